"""Fault injection for the reference lab server: the ways networks and labs fail.

:class:`FaultInjector` is an ASGI middleware. With probability ``rate`` a request to the
protocol's routes (not ``/v1/health``) meets one fault, chosen at random from ``kinds``:

- ``"503"`` / ``"502"``: the lab or a proxy in front of it answers with that status;
- ``"slow"``: the reply comes ``slow_s`` seconds late (past the client's time-out);
- ``"drop"``: the connection is closed mid-reply;
- ``"malformed"``: a 200 reply whose body is not the protocol's (cut-off JSON or wrong fields).

Half of the faults strike *after* the lab has handled the request (the submit happened, only
the reply is lost), which is what makes idempotent submission necessary. Used by the tests
and by ``sciwm bench connectors``; seeded, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from lab_connectors.http_protocol import PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KINDS = ("503", "502", "slow", "drop", "malformed")


class FaultInjector:
    """Wraps an ASGI app; a seeded fraction ``rate`` of protocol requests meets a fault.

    Args:
        app: The lab's ASGI application.
        rate: Fraction of requests that meet a fault (0-1).
        kinds: Which faults (a subset of :data:`KINDS`).
        slow_s: Delay of a ``"slow"`` reply, in seconds.
        seed: Seed of the random choices.

    Attributes:
        counts: Faults injected so far, by ``kind`` and ``kind:after``.
    """

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        kinds: Sequence[str] = KINDS,
        slow_s: float = 2.0,
        seed: int = 0,
    ) -> None:
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds or not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault kinds must be among {KINDS} and 0 <= rate <= 1")
        self.app = app
        self.rate = float(rate)
        self.kinds = tuple(kinds)
        self.slow_s = float(slow_s)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def _draw(self) -> tuple[str, bool] | None:
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            kind, after = self._rng.choice(self.kinds), self._rng.random() < 0.5
            self.counts[kind + (":after" if after else "")] += 1
            return kind, after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        fault = None
        if scope["type"] == "http" and path.startswith(PREFIX) and path != f"{PREFIX}/health":
            fault = self._draw()
        if fault is None:
            await self.app(scope, receive, send)
            return
        kind, after = fault
        held: list[Message] = []
        if after:  # the lab does the work; only the reply goes wrong

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
        if kind == "slow":
            await asyncio.sleep(self.slow_s)
            if after:
                for message in held:
                    await send(message)
            else:
                await self.app(scope, receive, send)
        elif kind == "503":
            await _reply(send, 503, b'{"detail": "injected fault"}', "application/json")
        elif kind == "502":
            await _reply(send, 502, b"<html>Bad Gateway</html>", "text/html")
        elif kind == "drop":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise ConnectionAbortedError("injected fault: connection dropped")
        else:
            body = _malformed(held, self._rng)
            await _reply(send, 200, body, "application/json")


def _malformed(held: Sequence[Message], rng: random.Random) -> bytes:
    real = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    if real and rng.random() < 0.5:
        return real[: max(1, len(real) // 2)]  # cut off mid-way
    return json.dumps({"id": 7, "status": "exploded", "outcomes": "none"}).encode()


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
