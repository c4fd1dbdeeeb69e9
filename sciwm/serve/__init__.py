"""``sciwm serve``: a REST service and a page that ask campaigns' world models.

:mod:`~sciwm.serve.settings` (bind address, token, limits), :mod:`~sciwm.serve.app` (the
FastAPI app), :mod:`~sciwm.serve.guard` (token and body-size middleware),
:mod:`~sciwm.serve.errors` (every failure as a 4xx JSON reply), :mod:`~sciwm.serve.registry`
(open campaigns and their plots), :mod:`~sciwm.serve.openapi` (the committed description).
The page is plain HTML and JavaScript in ``static/``.
"""

from __future__ import annotations

import logging
import os

from sciwm.serve.settings import ServeSettings

__all__ = ["ServeSettings", "serve"]

log = logging.getLogger("sciwm.serve")


def serve(settings: ServeSettings) -> None:
    """Run the service until interrupted (Ctrl-C or SIGTERM).

    torch runs on ``$SCIWM_TORCH_THREADS`` threads (default 1, as a campaign: one-candidate
    questions are fastest on one thread, most of all on a busy machine).

    Raises:
        SciwmError: If the store cannot be reached (checked before listening).
    """
    threads = os.environ.get("SCIWM_TORCH_THREADS", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before torch starts its pools
        os.environ.setdefault(var, threads)
    import torch
    import uvicorn

    torch.set_num_threads(int(threads))

    from sciwm.serve.app import create_app
    from sciwm.store import RecordStore

    RecordStore(settings.tracking_uri)  # fail now, with the store's own message
    app = create_app(settings)
    auth = "bearer token required" if settings.token else "no token (loopback only)"
    print(f"sciwm serve: {settings.url}/ ({auth}); Ctrl-C stops it", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
