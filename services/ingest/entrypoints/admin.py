"""`python -m ingest admin ...`: create workspaces, issue API keys, change plans. Prints JSON.

The key is printed once; only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from typing import Any

from ingest.config import Settings
from ingest.domain.phone import is_region
from shared.mongo import database, make_client
from shared.workspaces import Plan, WorkspaceDirectory


def _plan_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    base = Plan()
    parser.add_argument("--plan-name", default=base.name if defaults else None)
    parser.add_argument(
        "--cps", type=float, default=base.calls_per_second if defaults else None, help="calls per second"
    )
    parser.add_argument("--max-concurrent", type=int, default=base.max_concurrent_calls if defaults else None)
    parser.add_argument(
        "--max-records",
        type=int,
        default=base.max_records_per_batch if defaults else None,
        help="rows per batch",
    )
    parser.add_argument(
        "--rpm",
        type=int,
        default=base.requests_per_minute if defaults else None,
        help="API requests per minute",
    )


def _plan_of(args: argparse.Namespace, base: Plan) -> Plan:
    changes: dict[str, Any] = {
        "name": args.plan_name,
        "calls_per_second": args.cps,
        "max_concurrent_calls": args.max_concurrent,
        "max_records_per_batch": args.max_records,
        "requests_per_minute": args.rpm,
    }
    return Plan.model_validate({**base.model_dump(), **{k: v for k, v in changes.items() if v is not None}})


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m ingest admin", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-workspace", help="create a workspace, its plan and a first API key")
    create.add_argument("--name", required=True)
    create.add_argument("--workspace-id", help="default: ws_<random hex>")
    create.add_argument("--region", help="default region (ISO 3166, e.g. US) for numbers without '+'")
    _plan_arguments(create, defaults=True)
    issue = commands.add_parser("issue-key", help="issue another API key for a workspace")
    issue.add_argument("--workspace-id", required=True)
    issue.add_argument("--label", default="")
    plan = commands.add_parser("set-plan", help="change a workspace's plan (unset flags keep their value)")
    plan.add_argument("--workspace-id", required=True)
    _plan_arguments(plan, defaults=False)
    return root


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    client = make_client(settings.infra, "ingest-admin")
    try:
        directory = WorkspaceDirectory(database(client, settings.infra), cache_seconds=0)
        if args.command == "create-workspace":
            if args.region and not is_region(args.region):
                raise SystemExit(f"unknown region {args.region!r}")
            workspace_id = args.workspace_id or f"ws_{secrets.token_hex(6)}"
            workspace = await directory.create_workspace(
                workspace_id, args.name, _plan_of(args, Plan()), args.region.upper() if args.region else None
            )
            key = await directory.issue_key(workspace_id, "created with the workspace")
            return {
                "workspace_id": workspace_id,
                "api_key": key.secret_key,
                "plan": workspace.plan.model_dump(),
                "default_region": workspace.default_region,
            }
        found = await directory.workspace(args.workspace_id)
        if found is None:
            raise SystemExit(f"no workspace {args.workspace_id!r}")
        if args.command == "issue-key":
            key = await directory.issue_key(args.workspace_id, args.label)
            return {"workspace_id": args.workspace_id, "api_key": key.secret_key}
        new_plan = _plan_of(args, found.plan)
        await directory.set_plan(args.workspace_id, new_plan)
        return {"workspace_id": args.workspace_id, "plan": new_plan.model_dump()}
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    result = asyncio.run(run(args, Settings()))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
