"""The ``ray`` executor: infer and make-condition jobs scored/derived on a Ray cluster.

The worker process stays the driver and the store stays the single source of truth. An infer
job's images without a prediction become a Ray Data dataset (``from_items`` of ids and paths),
scored by ``map_batches`` on an actor pool whose actors each load the detector once (one GPU per
actor when the cluster has GPUs, CPU actors otherwise). The driver iterates the results as they
arrive and writes each batch with the same ON CONFLICT DO NOTHING insert as local jobs,
reporting progress and checking cancel between batches (a cancel shuts the dataset down). A
killed driver loses only the batches in flight: the next worker resumes from the store exactly
as for a local job. Make-condition jobs run ``derive_row`` in ``map_batches`` tasks the same way.

Job params: ``executor: "ray"`` (or the worker's ``--executor ray``); ``ray_address`` (else
``RAY_ADDRESS`` / the worker's ``--ray-address``; ``auto`` joins the cluster of this node; none
starts a private local Ray); ``ray_actors`` (scoring actors; default one per GPU, else one per
CPU). Images, weights, the data directory and this checkout must be at the same paths on
every node. Ray is imported lazily: the default install does not need it
(``requirements-cluster.txt``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from db.session import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable

    from dashboard.worker import JobContext

CPUS_PER_ACTOR = 1.0  # CPU reservation of a CPU scoring actor (its torch threads follow it)
CONNECT_TIMEOUT_S = 5.0  # to reach a Ray address before handing it to ray.init
DERIVE_TASK_BATCH = 4  # images per derive task: small, so progress and cancel stay fine-grained


@dataclass(frozen=True)
class ActorPlan:
    """How many scoring actors to start and what each reserves."""

    actors: int
    num_gpus: float  # per actor: 1 on a GPU cluster, else 0
    num_cpus: float  # per actor


def ray_address(params: dict[str, Any]) -> str | None:
    """The job's ``ray_address``, else ``RAY_ADDRESS``; None starts a private local Ray."""
    return params.get("ray_address") or os.environ.get("RAY_ADDRESS") or None


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
        raise ValueError(f"Ray address must be 'auto', 'host:port' or 'ray://host:port', got "
                         f"{address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"no Ray cluster at {address!r} ({exc}); start one with "
                              f"'ray start --head' or fix the address") from None


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
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    return ray.get_runtime_context().gcs_address


def plan_actors(params: dict[str, Any], device: str, resources: dict[str, float]) -> ActorPlan:
    """Pool size and per-actor resources from the job params and the cluster's resources."""
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    if device == "cuda" and gpus == 0:
        raise ValueError("device 'cuda' was asked for but the Ray cluster has no GPU")
    use_gpu = gpus > 0 and device != "cpu"
    requested = params.get("ray_actors")
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"ray_actors must be a positive integer, got {requested!r}")
        actors = requested
    else:
        actors = gpus if use_gpu else max(1, int(cpus // CPUS_PER_ACTOR))
    return ActorPlan(actors, 1.0 if use_gpu else 0.0, 1.0 if use_gpu else CPUS_PER_ACTOR)


class Scorer:
    """Ray Data actor: loads the detector once, turns a batch of (image id, path) into
    prediction rows (JSON strings, so ragged attention and NULLs cross Arrow unchanged)."""

    def __init__(self, run_id: int, weights: str, cfg: str | None, device: str,
                 sha256: str | None = None) -> None:
        from dashboard.worker import get_detector

        self.run_id = run_id
        self.detector = get_detector(weights, cfg, device, sha256)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from dashboard.worker import _prediction_row

        rows = [json.dumps(_prediction_row(self.run_id, int(iid),
                                           self.detector.score_one(str(path))))
                for iid, path in zip(batch["image_id"], batch["path"])]
        return {"row": np.array(rows, dtype=object)}


def derive_batch(batch: dict[str, np.ndarray], condition_id: str) -> dict[str, np.ndarray]:
    """Ray Data task: derive the batch's files (``worker.derive_row``), rows as JSON strings."""
    from dashboard.worker import derive_row

    keys = ("image_id", "src", "error", "stem", "key")
    rows = []
    for values in zip(*(batch[k] for k in keys)):
        item = dict(zip(keys, values))
        item["image_id"] = int(item["image_id"])
        rows.append(json.dumps(derive_row(item, condition_id)))
    return {"row": np.array(rows, dtype=object)}


def drain(ctx: JobContext, dataset: Any, write: Callable[[list[dict[str, Any]]], None]) -> None:
    """Write the dataset's result rows batch by batch as they arrive; between batches stop
    (shutting the dataset down) if the job must stop."""
    batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy",
                                        prefetch_batches=0))
    try:
        for batch in batches:
            write([json.loads(s) for s in batch["row"]])
            ctx.check()
    finally:
        batches.close()  # shuts the streaming executor (and its actors) down at once


def _blocks(n: int, per_block: int) -> int:
    return max(1, math.ceil(n / per_block))


def run_infer_ray(ctx: JobContext) -> dict[str, Any]:
    """The ``infer`` job on Ray: same run, rows, progress, cancel and resume as local."""
    import ray

    from dashboard.worker import (
        close_infer_run,
        error_rows,
        infer_todo,
        open_infer_run,
        write_predictions,
    )

    address = connect(ray_address(ctx.params))
    r = open_infer_run(ctx)
    todo = infer_todo(ctx, r)
    bad = error_rows(r, todo)
    if bad:
        write_predictions(ctx, r, bad)
    items = [{"image_id": iid, "path": str(path)} for iid, path, err in todo if err is None]
    if items:
        plan = plan_actors(ctx.params, r.device, ray.cluster_resources())
        blocks = _blocks(len(items), r.batch)
        actors = min(plan.actors, blocks)  # an actor without a block would only load the model
        ctx.log(f"ray {address}: {len(items)} images on {actors} "
                f"{'GPU' if plan.num_gpus else 'CPU'} actor(s)")
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        ds = ds.map_batches(
            Scorer, fn_constructor_kwargs={"run_id": r.run_id, "weights": r.weights,
                                           "cfg": r.cfg, "device": r.device,
                                           "sha256": r.sha256},
            batch_size=r.batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=plan.num_cpus, num_gpus=plan.num_gpus,
        )
        drain(ctx, ds, lambda rows: write_predictions(ctx, r, rows))
    return close_infer_run(ctx, r)


def derive_missing_ray(ctx: JobContext, imageset_id: int, condition_id: str) -> dict[str, int]:
    """The ``make-condition`` work on Ray: ``derive_row`` in ``map_batches`` tasks."""
    import ray

    from dashboard.worker import derive_row, derive_todo, write_derived

    connect(ray_address(ctx.params))
    todo, counts = derive_todo(ctx, imageset_id, condition_id)
    no_file = [it for it in todo if it["src"] is None]
    if no_file:
        write_derived(ctx, [derive_row(it, condition_id) for it in no_file], counts)
    items = [it for it in todo if it["src"] is not None]
    if items:
        ds = ray.data.from_items(items,
                                 override_num_blocks=_blocks(len(items), DERIVE_TASK_BATCH))
        ds = ds.map_batches(derive_batch, fn_kwargs={"condition_id": condition_id},
                            batch_size=DERIVE_TASK_BATCH, batch_format="numpy", num_cpus=1)
        drain(ctx, ds, lambda rows: write_derived(ctx, rows, counts))
    return counts
