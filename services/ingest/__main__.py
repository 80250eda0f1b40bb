"""`python -m ingest` serves the API (port 8001); `python -m ingest admin ...` manages workspaces."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["admin"]:
        from ingest.entrypoints.admin import main as admin

        return admin(argv[1:])
    if argv:
        print("usage: python -m ingest [admin ...]", file=sys.stderr)
        return 2
    from ingest.bootstrap import build_runtime, configure
    from ingest.config import Settings
    from ingest.entrypoints.http_app import create_app
    from shared.runner import serve

    settings = Settings()
    configure(settings)
    serve(create_app(build_runtime(settings)), settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
