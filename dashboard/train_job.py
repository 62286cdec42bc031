"""The ``train`` job kind: run spai.training.train in the worker and register the result.

Params (as queued by the Train page): ``cfg`` (YAML, default configs/demo.yaml), ``data_path``,
``csv_root_dir``, ``output``, ``tag``, ``pretrained``, ``resume``, ``init_from`` (a model's
weights to fine-tune), ``epochs``, ``batch_size``, ``learning_rate``, ``aug_conditions``
(``[{id, p}, ...]``, AUG.CONDITIONS), ``device``. Progress is the optimiser step out of the total; cancel stops
after the current step (a resumable ``ckpt_last.pth`` is written). A job that is restarted after
a crash resumes from the ``ckpt_last.pth`` in its output folder. The best checkpoint (or the last
one) is registered as a model with origin "trained". Imported by the worker (PLUGIN_MODULES).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dashboard.worker import JobContext, register_handler
from db.session import REPO_ROOT, session_scope

if TYPE_CHECKING:
    from spai.config import Config

DEFAULT_CFG = REPO_ROOT / "configs" / "demo.yaml"
PARAM_TO_KEY = {"epochs": "TRAIN.EPOCHS", "batch_size": "DATA.BATCH_SIZE",
                "learning_rate": "TRAIN.BASE_LR",
                "aug_conditions": "AUG.CONDITIONS"}  # [{id, p}, ...] from the Train page


def _path(value: Any) -> Path | None:
    if not value:
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def job_config(params: dict[str, Any]) -> Config:
    """The training config of a job: its YAML (default configs/demo.yaml) with the job's
    overrides (epochs, batch size, learning rate, AUG.CONDITIONS) applied."""
    from spai.config import load_config

    opts = [(key, params[name]) for name, key in PARAM_TO_KEY.items()
            if params.get(name) is not None]
    return load_config(_path(params.get("cfg")) or DEFAULT_CFG, opts)


def run_train(ctx: JobContext) -> dict[str, Any]:
    from dashboard.jobqueue import register_model
    from spai.training import CKPT_LAST, TrainOptions, train

    p = ctx.params
    cfg_path = _path(p.get("cfg")) or DEFAULT_CFG
    cfg = job_config(p)
    data_path = _path(p.get("data_path"))
    if data_path is None:
        raise ValueError("train job: 'data_path' (a training CSV) is required")
    output = _path(p.get("output")) or REPO_ROOT / "data" / "train" / str(p.get("tag") or ctx.job_id)
    resume = _path(p.get("resume"))
    if resume is None and (output / CKPT_LAST).is_file():
        resume = output / CKPT_LAST  # restarted after a crash or a cancel: continue
        ctx.log(f"resuming from {resume}")
    options = TrainOptions(data_path=data_path, csv_root_dir=_path(p.get("csv_root_dir")),
                           output=output, pretrained=_path(p.get("pretrained")), resume=resume,
                           init_from=_path(p.get("init_from")),
                           device=str(p.get("device") or "auto"))

    def on_progress(event: dict[str, Any]) -> bool:
        if event.get("type") == "step":
            ctx.progress(int(event["step"]), int(event.get("total_steps") or 0) or None)
        elif event.get("type") == "epoch":
            ctx.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in event.items() if k != "type"))
        return not ctx.should_stop()

    result = train(cfg, options, on_progress)
    ctx.check()  # a cancelled run ends as cancelled, its resume point kept
    ckpt = result.best_checkpoint or result.last_checkpoint
    name = f"trained-{p.get('tag') or ctx.job_id}"
    with session_scope(ctx.url) as s:
        try:
            model_id = register_model(s, ckpt, name=name, cfg=cfg_path, origin="trained",
                                      owner=ctx.owner)
        except ValueError:  # a resumed run: the name holds its earlier checkpoint
            model_id = register_model(s, ckpt, name=f"{name}-step{result.steps}", cfg=cfg_path,
                                      origin="trained", owner=ctx.owner)
    return {"output": str(result.output), "best_checkpoint": str(ckpt), "best_epoch": result.best_epoch,
            "steps": result.steps, "model_id": model_id, "skipped_images": len(result.skipped)}


register_handler("train", run_train)
