"""`python -m status` serves the status API on STATUS_HTTP_PORT (8002) and runs the projector."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from shared.runner import serve
    from status.config import Settings
    from status.entrypoints.app import build_app

    settings = Settings()
    serve(build_app(settings), settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
