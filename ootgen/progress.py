"""How a run reports itself: a live rich progress bar, quiet mode, or one JSON object per event.

The run emits (event, data) pairs; this module only presents them. Nothing here ever sees the API key.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


class JsonLog:
    def __call__(self, event: str, data: dict) -> None:
        sys.stderr.write(json.dumps({"t": round(time.time(), 3), "event": event, **data}, default=str) + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        pass


class Quiet:
    def __call__(self, event: str, data: dict) -> None:
        if event == "warning":
            sys.stderr.write(f"ootgen: warning: {data['message']}\n")

    def close(self) -> None:
        pass


class LiveProgress:
    """accepted / rejected / failed, calls, tokens and dollars, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]ootgen[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"), console=self.console, transient=False,
        )
        self.task: Any = None
        self.accepted = self.rejected = self.failed = self.calls = self.tokens = 0
        self.spent = 0.0
        self.cost_unknown = False  # a call to a model without prices: never show a made-up $0.00

    def __call__(self, event: str, data: dict) -> None:
        if event == "warning":
            self.console.print(f"[yellow]warning:[/yellow] {data['message']}")
            return
        if event == "start":
            self.accepted = data["accepted"]
            self.spent = data.get("spent") or 0.0
            self.cost_unknown = not data.get("known_model", True)
            if data["resuming"]:
                self.console.print(f"resuming: {data['accepted']} accepted so far")
            self.progress.start()
            self.task = self.progress.add_task("run", total=data["target"], completed=min(self.accepted, data["target"]), stats="")
        elif event == "call":
            self.calls += 1
            usage = data["usage"]
            self.tokens += sum(usage.values())
            self.spent = data.get("spent", self.spent)
            self.cost_unknown = self.cost_unknown or data.get("cost") is None
        elif event == "judged":
            self.accepted += data["accepted"]
            self.rejected += data["rejected"]
        elif event == "generated":
            self.rejected += data["static_rejected"]
        elif event == "failure":
            self.failed += 1
        elif event == "done":
            self.close()
            return
        if self.task is not None:
            self.progress.update(
                self.task, completed=min(self.accepted, self.progress.tasks[0].total or 0),
                stats=f"ok {self.accepted}  rej {self.rejected}  fail {self.failed}  calls {self.calls}  tok {self.tokens:,}  {self.cost_text()}",
            )

    def cost_text(self) -> str:
        return "cost unknown" if self.cost_unknown else f"${self.spent:.2f}"

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def make_reporter(mode: str):
    if mode == "json":
        return JsonLog()
    if mode == "quiet":
        return Quiet()
    return LiveProgress()
