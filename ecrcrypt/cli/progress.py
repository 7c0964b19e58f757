"""Transfer progress on a terminal only.

A bar is drawn (rich, on stderr) when stderr is a terminal, ``--no-progress`` was not
given and the total is known: a bar without a total says nothing, and bytes of
escape codes in a pipe or a CI log are noise. Otherwise the counter does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

__all__ = ["Counting", "progress"]


@contextmanager
def progress(label: str, total: int | None, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A function to call with each chunk's byte count."""
    if not enabled or total is None or not sys.stderr.isatty():
        yield lambda n: None
        return
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


class Counting:
    """A write-through destination that reports each write."""

    def __init__(self, inner: Any, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance

    def write(self, data: bytes) -> int:
        n: int = self._inner.write(data)
        self._advance(len(data))
        return n
