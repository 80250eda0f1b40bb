"""`python -m dialer` serves; `python -m dialer call --to ...` places one call (see `operator_call`)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["call"]:
        from dialer.entrypoints.operator_call import main as call

        return call(argv[1:])
    from dialer.config import Settings
    from dialer.entrypoints.app import build_app
    from shared.runner import serve

    settings = Settings()
    serve(build_app(settings), settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
