"""Console entry point: `batchcalls` (pyproject) or `python -m batchcalls_cli`."""

from __future__ import annotations

from batchcalls_cli.app import run


def main() -> None:
    """Run the CLI and exit with its documented exit code."""
    raise SystemExit(run())


if __name__ == "__main__":
    main()
