"""Job kinds: the name a job row carries, its parameters' type and the function that runs it.

Each handler module registers its kind when imported (``jobs.worker`` imports the built-in
ones: ``jobs.derive``, ``jobs.infer``, ``jobs.imports``, ``jobs.train``). A kind from elsewhere::

    from jobs.registry import register_handler

    def run_mine(ctx: JobContext) -> dict | None:
        ...  # ctx.params, ctx.progress(done, total), ctx.advance(n), ctx.log(msg), ctx.check()

    register_handler("mine", run_mine)  # params=<a jobs.params.JobParams class> to type them

and list the module in ``SPAI_WORKER_PLUGINS`` (comma-separated module names the worker
imports at start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.context import JobContext
    from jobs.params import JobParams

Handler = Callable[["JobContext"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Handler
    params: type[JobParams] | None = None  # None: the handler gets the stored dict
    on_stop: Callable[[JobContext, str], None] | None = None  # after "cancelled" / "failed"

    def parse(self, raw: dict[str, Any] | None) -> Any:
        """The job's typed parameters (``jobs.params``): checked before the handler runs."""
        return dict(raw or {}) if self.params is None else self.params.from_dict(dict(raw or {}))


KINDS: dict[str, JobKind] = {}


def register_handler(
    kind: str,
    fn: Handler,
    *,
    params: type[JobParams] | None = None,
    on_stop: Callable[[JobContext, str], None] | None = None,
    replace: bool = False,
) -> Handler:
    """Register the function that runs jobs of ``kind``; a duplicate kind raises."""
    if kind in KINDS and not replace and KINDS[kind].run is not fn:
        raise ValueError(f"a handler for job kind {kind!r} is already registered")
    KINDS[kind] = JobKind(kind, fn, params, on_stop)
    return fn


def get_kind(kind: str) -> JobKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"No handler for job kind {kind!r}. Available: {', '.join(sorted(KINDS))}") from None
