"""The ``local`` executor: every batch in this process, one after the other."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.executors import ExecutorChoice, Task, batches, never


@dataclass(frozen=True)
class LocalExecutor:
    name: str = "local"

    def map(
        self,
        task: Task,
        items: Sequence[Any],
        *,
        batch_size: int,
        should_stop: Callable[[], bool] = never,
        log: Callable[[str], None] | None = None,
    ) -> Iterator[list[Any]]:
        if not items:
            return
        run = task.open()  # e.g. the detector, loaded once per process (jobs.work)
        for chunk in batches(items, batch_size):
            if should_stop():
                return
            yield run(chunk)


def make(params: ExecutorChoice) -> LocalExecutor:
    return LocalExecutor()
