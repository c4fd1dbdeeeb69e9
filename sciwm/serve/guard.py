"""ASGI middleware of the service: the bearer token and the request-size limit.

Both answer a refused request themselves with a JSON body (:func:`sciwm.serve.errors.error_body`)
before it reaches FastAPI. The token is compared with :func:`hmac.compare_digest` and never
written anywhere: not in a reply, not in a log line.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sciwm.serve.errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths that answer without a token: the health check, and the page's own files (they hold
#: no data; the page asks the API with the token the user gives it).
OPEN_PATHS = ("/api/health",)
OPEN_PREFIXES = ("/static/",)
OPEN_EXACT = ("/", "/favicon.ico")


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict | None = None):
    """Send a whole JSON reply."""
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class BearerToken:
    """Refuse every request that needs the token and lacks it (401).

    Args:
        app: The wrapped ASGI app.
        token: The expected token.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                scheme, _, rest = value.partition(b" ")
                given = rest.strip() if scheme.lower() == b"bearer" else b""
        if not hmac.compare_digest(given, self._token):
            why = "wrong" if given else "missing"
            await send_json(
                send,
                401,
                error_body(
                    "unauthorized",
                    f"the bearer token is {why}: send the header 'Authorization: Bearer "
                    "<token>' with the token this service was started with (its "
                    "SCIWM_SERVE_TOKEN or --token-file)",
                ),
                {"WWW-Authenticate": "Bearer"},
            )
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a request whose body is larger than ``limit`` bytes (413), declared or streamed.

    The body is read here (up to ``limit`` + 1 bytes) and handed on whole.

    Args:
        app: The wrapped ASGI app.
        limit: Largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = int(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send, size)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        await send_json(
            send,
            413,
            error_body(
                "body_too_large",
                f"the request body has {size} bytes or more, over this service's limit of "
                f"{self.limit}; send fewer candidates per request (or start the service with "
                "a larger --max-body-bytes)",
            ),
        )


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path in OPEN_EXACT or path.startswith(OPEN_PREFIXES)
