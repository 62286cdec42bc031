"""Executors: where a job's work items are turned into results.

An executor only maps a list of work items to results, batch by batch; it knows nothing of
jobs, runs or the store. The job hands it a *task* (a small frozen, picklable record, see
``jobs.work``) whose ``open()`` returns the function for one batch (loading a model once), and
writes each batch of results as it arrives, checking cancel in between::

    executor = get_executor(params)  # params.executor, else SPAI_EXECUTOR, else "local"
    for results in executor.map(task, items, batch_size=16, should_stop=ctx.should_stop):
        write(results)

Adding one (Dask, a GPU pool) is one module with a ``make(params) -> Executor`` function and a
line in ``EXECUTORS``. Executor modules are imported only when a job asks for them, so the
default install needs no Ray.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

EXECUTORS: dict[str, str] = {"local": "jobs.executors.local", "ray": "jobs.executors.ray"}
ENV_EXECUTOR = "SPAI_EXECUTOR"  # the worker's default (python -m jobs.worker --executor)

Item = TypeVar("Item")
Result = TypeVar("Result")


class Task(Protocol[Item, Result]):
    """What an executor runs: ``open()`` loads what the work needs once (per process or
    actor) and returns the function that turns one batch of items into their results."""

    device: str  # "cpu" for CPU-only work; "auto"/"cuda" may use a GPU

    def open(self) -> Callable[[list[Item]], list[Result]]: ...


class ExecutorChoice(Protocol):
    """What a job says about its executor (``jobs.params.ExecutorParams``)."""

    executor: str | None
    ray_address: str | None
    ray_actors: int | None


class Executor(Protocol):
    name: str

    def map(
        self,
        task: Task,
        items: Sequence[Any],
        *,
        batch_size: int,
        should_stop: Callable[[], bool] = ...,
        log: Callable[[str], None] | None = None,
    ) -> Iterator[list[Any]]:
        """Results of ``items`` in batches of at most ``batch_size`` (in any order, each result
        naming its item); stops before the next batch once ``should_stop()``."""
        ...


def check_executor(name: str) -> str:
    """``name`` if it is a known executor, else ``ValueError`` listing the known ones."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")
    return name


def executor_name(choice: str | None) -> str:
    """The job's choice, else ``SPAI_EXECUTOR``, else ``local``."""
    return check_executor(choice or os.environ.get(ENV_EXECUTOR) or "local")


def get_executor(params: ExecutorChoice) -> Executor:
    """The executor a job's parameters ask for, configured from them."""
    module = importlib.import_module(EXECUTORS[executor_name(params.executor)])
    return module.make(params)


def batches(items: Sequence[Item], size: int) -> list[list[Item]]:
    """``items`` in consecutive lists of at most ``size``."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def never() -> bool:
    return False
