"""The live progress display of a run (edge of the scenario layer; imports rich and
scenario.monitor/faults/processes).

On a terminal: a rich Live panel redrawn four times a second with items done, items/s,
activations/s, conflicts, retries, redeliveries, dead letters, escalations and processes
alive; fault events print above it as they happen. When stdout is not a terminal: one plain
line every few seconds and one per fault. With `quiet`: nothing.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from blackboard.scenario.faults import FaultEvent
from blackboard.scenario.monitor import Sample
from blackboard.scenario.processes import Supervisor

__all__ = ["LiveView"]


def _rate(samples: list[Sample], attr: str, window: float = 2.0) -> float:
    if len(samples) < 2:
        return 0.0
    last = samples[-1]
    first = next((s for s in samples if s.t >= last.t - window), samples[0])
    if last.t <= first.t:
        return 0.0
    return float(getattr(last, attr) - getattr(first, attr)) / (last.t - first.t)


class LiveView:
    """``with LiveView(...) as view: view.update(samples)``."""

    def __init__(
        self,
        title: str,
        items: int,
        supervisor: Supervisor,
        console: Console,
        *,
        quiet: bool = False,
        plain_every: float = 5.0,
    ) -> None:
        self.title = title
        self.items = items
        self.sup = supervisor
        self.console = console
        self.quiet = quiet
        self.interactive = console.is_terminal and not quiet
        self.plain_every = plain_every
        self._live: Live | None = None
        self._last_plain = 0.0
        self._last_fault = ""
        self._samples: list[Sample] = []

    def __enter__(self) -> LiveView:
        if self.interactive:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=4, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(et, e, tb)
            self._live = None

    def note(self, text: str) -> None:
        """A line above the display (or a plain line)."""
        if self.quiet:
            return
        self.console.print(text, highlight=False, markup=False)

    def fault(self, ev: FaultEvent) -> None:
        self._last_fault = f"{ev.t:6.1f}s {ev.kind} {ev.target} {ev.detail}".rstrip()
        self.note(f"[{ev.t:6.1f}s] fault: {ev.kind} {ev.target} {ev.detail}".rstrip())

    def update(self, samples: list[Sample]) -> None:
        self._samples = samples
        if self._live is not None:
            self._live.update(self._render())
        elif not self.quiet and samples and time.monotonic() - self._last_plain >= self.plain_every:
            self._last_plain = time.monotonic()
            s = samples[-1]
            self.note(
                f"[{s.t:6.1f}s] done {s.done}/{self.items}  items/s {_rate(samples, 'done'):.1f}  "
                f"activations/s {_rate(samples, 'activations'):.1f}  conflicts {s.conflicts}  "
                f"retries {s.retries}  redeliveries {s.redeliveries}  "
                f"dead letters {s.dead_letters}  escalations {s.escalations}  "
                f"agents {s.agents_alive}/{s.agents_total}"
            )

    def _render(self) -> Panel:
        s = self._samples[-1] if self._samples else None
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        done = s.done if s else 0
        bar = ProgressBar(total=max(1, self.items), completed=done, width=40)
        grid.add_row(
            "items",
            Group(bar, Text(f"{done}/{self.items} done, {s.written if s else 0} written, "
                            f"{_rate(self._samples, 'done'):.1f} items/s")),
        )  # fmt: skip
        if s is not None:
            grid.add_row(
                "activations", f"{s.activations} ({_rate(self._samples, 'activations'):.1f}/s)"
            )
            grid.add_row(
                "conflicts / retries",
                f"{s.conflicts} / {s.retries}   redeliveries {s.redeliveries}   "
                f"escalations {s.escalations}",
            )
            if s.dead_letters:
                grid.add_row("dead letters", f"{s.dead_letters} items")
        parts = []
        for kind in ("agent", "controller", "compactor"):
            alive, total = self.sup.alive(kind)
            if total:
                parts.append(f"{kind}s {alive}/{total}")
        grid.add_row("alive", "   ".join(parts))
        if self._last_fault:
            grid.add_row("last fault", self._last_fault)
        elapsed = f"{s.t:.1f}s" if s else "starting"
        return Panel(grid, title=f"{self.title} · {elapsed}", expand=False)
