"""`python -m dialer call`: place one call and print one JSON line, to test a trunk before a campaign."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from datetime import datetime
from typing import Any, TextIO

from dialer.bootstrap import build_provider, utc_now
from dialer.config import Settings
from dialer.domain.call import AnsweredBy, OutboundCall
from dialer.domain.prompt import render_prompt


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dialer call", description=__doc__)
    parser.add_argument("--provider", choices=("simulated", "sip"), default="simulated")
    parser.add_argument("--to", required=True, help="E.164 number, or a sip: URI for the sip provider")
    parser.add_argument("--ring-timeout", type=float, default=None, help="seconds to ring before giving up")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="hang up after this much talk time")
    parser.add_argument("--prompt", default="Hello {first_name}, this is a test call.")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a prompt variable")
    parser.add_argument("--seed", type=int, default=None, help="simulated: the model's seed")
    parser.add_argument("--time-scale", type=float, default=None, help="simulated: 1 real time, 0 instant")
    return parser.parse_args(argv)


class _Progress:
    def __init__(self) -> None:
        self.ringing_at: datetime | None = None
        self.answered_by: AnsweredBy | None = None

    def ringing(self) -> None:
        self.ringing_at = utc_now()

    def answered(self, answered_by: AnsweredBy) -> None:
        self.answered_by = answered_by


async def place_one(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {"provider": args.provider}
    if args.ring_timeout is not None:
        overrides["ring_timeout_seconds"] = args.ring_timeout
    if args.seed is not None:
        overrides["sim_seed"] = args.seed
    if args.time_scale is not None:
        overrides["sim_time_scale"] = args.time_scale
    settings = Settings(**overrides)
    variables = dict(pair.split("=", 1) for pair in args.var if "=" in pair)
    call = OutboundCall(
        attempt_id=f"operator_{uuid.uuid4().hex[:12]}",
        to=args.to,
        prompt=render_prompt(args.prompt, variables),
        variables=variables,
        max_call_seconds=args.max_seconds,
        ring_timeout_seconds=settings.ring_timeout_seconds,
    )
    provider = build_provider(settings, sip_log_level=0)
    progress = _Progress()
    await provider.start()
    try:
        started_at = utc_now()
        result = await provider.place_call(call, progress)
    finally:
        await provider.stop()
    return {
        "to": args.to,
        "provider": provider.name,
        "attempt_id": call.attempt_id,
        "outcome": result.outcome.value,
        "billable": result.billable,
        "rang": progress.ringing_at is not None,
        "answered": result.connected,
        "duration_seconds": round(result.talk_seconds, 3),
        "provider_code": result.provider_code,
        "provider_reason": result.provider_reason,
        "started_at": started_at.isoformat(),
        "answered_at": result.answered_at.isoformat() if result.answered_at else None,
        "ended_at": (result.ended_at or utc_now()).isoformat(),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # PJSIP prints a few lines to stdout before its logging can be redirected: keep stdout for the one
    # JSON line and give the library stderr.
    out: TextIO = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        line = asyncio.run(place_one(args))
    except Exception as exc:
        print(json.dumps({"to": args.to, "provider": args.provider, "error": str(exc)}), file=out, flush=True)
        return 1
    print(json.dumps(line), file=out, flush=True)
    return 0
