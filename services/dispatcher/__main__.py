"""`python -m dispatcher` serves HTTP (health, readiness, metrics) and runs the dispatch loops."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from dispatcher.config import Settings
    from dispatcher.entrypoints.app import build_app
    from shared.runner import serve

    settings = Settings()
    serve(build_app(settings), settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
