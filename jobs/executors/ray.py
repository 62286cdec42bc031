"""The ``ray`` executor: batches of work items on a pool of Ray actors.

The worker process stays the driver and the store the single source of truth: the driver
splits the items into batches, a pool of actors (each opening the task once, e.g. loading the
detector; one GPU per actor when the task may use one and the cluster has GPUs, CPU actors
otherwise) works through them, and the driver receives each batch's results as it completes,
writes them and checks cancel; on cancel (or a lost job) the actors are killed at once. A
killed driver loses only the batches in flight; the next worker resumes from the store.

Job parameters (``jobs.params.ExecutorParams``): ``executor: "ray"`` (or the worker's
``--executor ray``); ``ray_address`` (else ``RAY_ADDRESS`` / ``--ray-address``; ``auto`` joins
this node's cluster; none starts a private local Ray); ``ray_actors`` (default one per GPU,
else one per CPU). Images, weights, the data directory and this checkout must be at the same
paths on every node. This module imports no database code: actors unpickle it to run a task.
Ray itself is imported on first use (``requirements-cluster.txt``).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.executors import ExecutorChoice, Task, batches, never

REPO_ROOT = Path(__file__).resolve().parents[2]  # this checkout, importable on every node
CPUS_PER_ACTOR = 1.0  # CPU reservation of a CPU actor (its torch threads follow it)
CONNECT_TIMEOUT_S = 5.0  # to reach a Ray address before handing it to ray.init


@dataclass(frozen=True)
class ActorPlan:
    """How many actors to start and what each reserves."""

    actors: int
    num_gpus: float  # per actor: 1 on a GPU cluster, else 0
    num_cpus: float  # per actor


def ray_address(choice: str | None) -> str | None:
    """The job's ``ray_address``, else ``RAY_ADDRESS``; None starts a private local Ray."""
    return choice or os.environ.get("RAY_ADDRESS") or None


def runtime_env() -> dict[str, Any]:
    """The Ray job environment: this checkout importable by every Ray worker."""
    return {"env_vars": {"PYTHONPATH": str(REPO_ROOT)}}


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at a ``host:port`` (or ``ray://host:port``) address;
    Ray itself keeps retrying for minutes. ``None``, ``auto`` and ``local`` pass unchecked."""
    if address is None or address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"Ray address must be 'auto', 'host:port' or 'ray://host:port', got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(
            f"no Ray cluster at {address!r} ({exc}); start one with 'ray start --head' or fix the address"
        ) from None


def connect(address: str | None) -> str:
    """Join the Ray cluster at ``address`` (or start a local one) unless already connected;
    return the cluster's GCS address."""
    import ray

    if not ray.is_initialized():
        check_reachable(address)
        kwargs: dict[str, Any] = {"runtime_env": runtime_env(), "log_to_driver": False}
        if address is None:
            kwargs["include_dashboard"] = False
        main = threading.current_thread() is threading.main_thread()
        saved = signal.getsignal(signal.SIGTERM) if main else None
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            raise ConnectionError(f"cannot join the Ray cluster at {address!r}: {exc}") from exc
        finally:
            if main and saved is not None:  # ray.init makes SIGTERM exit at once; the worker
                signal.signal(signal.SIGTERM, saved)  # requeues its job on SIGTERM instead
    return ray.get_runtime_context().gcs_address


def plan_actors(requested: int | None, device: str, resources: dict[str, float]) -> ActorPlan:
    """Pool size and per-actor resources from the job's ``ray_actors``, the task's device and
    the cluster's resources."""
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    if device == "cuda" and gpus == 0:
        raise ValueError("device 'cuda' was asked for but the Ray cluster has no GPU")
    use_gpu = gpus > 0 and device != "cpu"
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"ray_actors must be a positive integer, got {requested!r}")
        actors = requested
    else:
        actors = gpus if use_gpu else max(1, int(cpus // CPUS_PER_ACTOR))
    return ActorPlan(actors, 1.0 if use_gpu else 0.0, 1.0 if use_gpu else CPUS_PER_ACTOR)


class Runner:
    """The actor: opens the task once, then runs batches."""

    def __init__(self, task: Task) -> None:
        self.run_batch = task.open()

    def run(self, items: list[Any]) -> list[Any]:
        return self.run_batch(items)


@dataclass(frozen=True)
class RayExecutor:
    address: str | None = None  # as given to the job; resolved by ray_address()
    actors: int | None = None
    name: str = "ray"

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
        import ray
        from ray.util import ActorPool

        gcs = connect(ray_address(self.address))
        chunks = batches(items, batch_size)
        plan = plan_actors(self.actors, task.device, ray.cluster_resources())
        n = min(plan.actors, len(chunks))  # an actor without a batch would only load the model
        if log is not None:
            log(
                f"ray {gcs}: {len(items)} items in {len(chunks)} batches on {n} "
                f"{'GPU' if plan.num_gpus else 'CPU'} actor(s)"
            )
        actor = ray.remote(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus)(Runner)
        pool = [actor.remote(task) for _ in range(n)]
        try:
            for results in ActorPool(pool).map_unordered(lambda a, c: a.run.remote(c), chunks):
                yield results
                if should_stop():
                    return
        finally:
            for a in pool:  # a cancel or a lost job stops the work in flight at once
                ray.kill(a)


def make(params: ExecutorChoice) -> RayExecutor:
    return RayExecutor(params.ray_address, params.ray_actors)
