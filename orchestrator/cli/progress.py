"""Progress for long work: on a terminal only (stderr), never mixed into results."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from orchestrator.context import AppContext


@contextlib.contextmanager
def host_progress(a: AppContext, total: int, label: str) -> Iterator[Callable[..., None] | None]:
    """Yields a callback(result, done, total) or None when progress is off."""
    if not a.progress or a.quiet or total == 0 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress

    from orchestrator.textsafe import clean

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def update(result: Any, done: int, total: int) -> None:
            bar.update(task, completed=done,
                       description=escape(clean(f"{label} {getattr(result, 'host', '')}")))
        yield update
