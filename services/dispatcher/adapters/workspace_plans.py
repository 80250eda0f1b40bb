"""Plan limits and the do-not-call list, read from the shared workspace records."""

from __future__ import annotations

from collections import OrderedDict
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
    """Checks a round's numbers against the workspace's list, held in memory as of its version: each round
    reads the version (one small document), and the whole list only when the version moved. Read whole
    every round, the list cost a round as many documents as it held (79,000 read in a pipeline of 100,000
    calls whose opt-outs grew it to 986; a suppression list of 100,000 numbers would be read every round).
    This service's own additions move the version by one, which it applies without a read."""

    def __init__(self, dnc: DoNotCallList, *, max_workspaces: int = 1_000) -> None:
        self._dnc = dnc
        self._held: OrderedDict[str, tuple[int, set[str]]] = OrderedDict()
        self._max = max_workspaces

    async def listed(self, workspace_id: str, phone_numbers: Sequence[str]) -> set[str]:
        if not phone_numbers:
            return set()
        return await self._numbers(workspace_id) & set(phone_numbers)

    async def _numbers(self, workspace_id: str) -> set[str]:
        version = await self._dnc.version(workspace_id)
        held = self._held.get(workspace_id)
        if held is not None and held[0] == version:
            self._held.move_to_end(workspace_id)
            return held[1]
        # Version first, then the list: a change between the two reads is in the list and raises the
        # version past the one kept, so the next round reads the list again (never a stale list kept).
        numbers = await self._dnc.numbers(workspace_id)
        self._keep(workspace_id, version, numbers)
        return numbers

    def _keep(self, workspace_id: str, version: int, numbers: set[str]) -> None:
        self._held[workspace_id] = (version, numbers)
        self._held.move_to_end(workspace_id)
        while len(self._held) > self._max:
            self._held.popitem(last=False)

    async def add(self, workspace_id: str, phone_numbers: Sequence[str], source: str) -> None:
        added, version = await self._dnc.add_many_versioned(workspace_id, phone_numbers, source)
        held = self._held.get(workspace_id)
        if not added or held is None:
            return
        if version == held[0] + added:  # nobody else changed the list in between: ours are the only changes
            self._keep(workspace_id, version, held[1] | set(phone_numbers))
        else:
            del self._held[workspace_id]
