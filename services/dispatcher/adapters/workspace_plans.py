"""Plan limits and the do-not-call list, read from the shared workspace records."""

from __future__ import annotations

from collections.abc import Sequence

from shared.workspaces import DoNotCallList, Plan, WorkspaceDirectory


class DirectoryPlanLimits:
    """A workspace's plan through the shared directory (cached briefly, so a plan change applies soon)."""

    def __init__(self, directory: WorkspaceDirectory) -> None:
        self._directory = directory
        self._default = Plan()

    async def limits(self, workspace_id: str) -> tuple[float, int]:
        workspace = await self._directory.workspace(workspace_id)
        plan = workspace.plan if workspace is not None else self._default
        return plan.calls_per_second, plan.max_concurrent_calls


class SharedDoNotCall:
    """Checks a round's numbers with one read of the workspace's entries (FerretDB scans per query anyway)."""

    def __init__(self, dnc: DoNotCallList) -> None:
        self._dnc = dnc

    async def listed(self, workspace_id: str, phone_numbers: Sequence[str]) -> set[str]:
        if not phone_numbers:
            return set()
        if len(phone_numbers) == 1:
            number = phone_numbers[0]
            return {number} if await self._dnc.contains(workspace_id, number) else set()
        return await self._dnc.numbers(workspace_id) & set(phone_numbers)

    async def add(self, workspace_id: str, phone_number: str, source: str) -> None:
        await self._dnc.add(workspace_id, phone_number, source)
