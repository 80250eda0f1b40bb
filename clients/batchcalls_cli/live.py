"""Live displays: the upload progress bar and the per-status progress bars of a running batch."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from batchcalls_cli.client import Progress as ProgressCallback
from batchcalls_cli.progress import BatchProgress
from batchcalls_cli.render import STATE_STYLES

BAR_STATES = ("completed", "failed", "active", "waiting", "cancelled")


@contextmanager
def transfer_bar(console: Console, label: str, total: int | None) -> Iterator[ProgressCallback]:
    """A byte progress bar; yields the callback the client calls per chunk. Silent when not a terminal."""
    if not console.is_terminal:
        yield lambda _n: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
        if total:
            bar.update(task, completed=total)


def follow_with_bars(console: Console, updates: Iterable[BatchProgress]) -> BatchProgress | None:
    """Shows one bar per call status until the batch is finished; returns the last progress seen.

    On a terminal the bars redraw in place; otherwise one line is printed per change (at most every 2 s,
    and always the last one), so logs and CI output stay readable."""
    if not console.is_terminal:
        return _follow_with_lines(console, updates)
    last: BatchProgress | None = None
    with Progress(
        TextColumn("{task.description}", justify="right"),
        BarColumn(bar_width=40),
        MofNCompleteColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as bars:
        tasks: dict[str, TaskID] = {}
        overall = bars.add_task("[bold]done", total=None)
        for state in BAR_STATES:
            style = STATE_STYLES.get(state, "")
            tasks[state] = bars.add_task(f"[{style}]{state}", total=None)
        for progress in updates:
            last = progress
            total = max(progress.total, 1)
            bars.update(overall, total=total, completed=progress.done, description=_headline(progress))
            for state, task in tasks.items():
                bars.update(task, total=total, completed=progress.count(state))
    return last


def _headline(progress: BatchProgress) -> str:
    style = STATE_STYLES.get(progress.status, "bold")
    return f"[bold]{progress.batch_id}[/] [{style}]{progress.status}[/]"


def _follow_with_lines(console: Console, updates: Iterable[BatchProgress]) -> BatchProgress | None:
    last: BatchProgress | None = None
    printed_at = float("-inf")
    pending = False
    for progress in updates:
        last = progress
        pending = True
        if progress.finished or time.monotonic() - printed_at >= 2.0:
            console.print(_line(progress))
            printed_at, pending = time.monotonic(), False
    if last is not None and pending:
        console.print(_line(last))
    return last


def _line(progress: BatchProgress) -> str:
    counts = " ".join(f"{state}={progress.count(state)}" for state in BAR_STATES)
    return f"{progress.batch_id} {progress.status}: {progress.done}/{progress.total} done · {counts}"
