"""``python -m lab_connectors.http_server``: the same as ``sciwm lab serve``."""

from lab_connectors.http_server.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
