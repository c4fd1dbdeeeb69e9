"""The service's OpenAPI description, as committed in ``docs/serve_openapi.json``.

Regenerate it after changing the API with ``python -m sciwm.serve.openapi docs/serve_openapi.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def openapi() -> dict[str, Any]:
    """The OpenAPI document of the app with default settings."""
    from sciwm.serve.app import create_app

    return create_app().openapi()


def dump() -> str:
    """The document as committed: indented, keys in the app's order, a final newline."""
    return json.dumps(openapi(), indent=2) + "\n"


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else None
    if out:
        Path(out).write_text(dump())
    else:
        sys.stdout.write(dump())
