"""The ``train`` job: run ``spai.training.train`` in the worker and register the result.

Parameters: ``jobs.params.TrainParams`` (as queued by the Train page). Progress is the
optimiser step out of the total; cancel stops after the current step (a resumable
``ckpt_last.pth`` is written). A job restarted after a crash resumes from the
``ckpt_last.pth`` in its output folder. The best checkpoint (or the last one) is registered as
a model of origin ``trained`` (``spai.weights.TRAINED``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from db.model_rows import register_model
from db.session import REPO_ROOT, session_scope
from jobs.context import JobContext
from jobs.params import TrainParams
from jobs.registry import register_handler
from spai.weights import TRAINED

if TYPE_CHECKING:
    from spai.config import Config

DEFAULT_CFG = REPO_ROOT / "configs" / "demo.yaml"
PARAM_TO_KEY = {
    "epochs": "TRAIN.EPOCHS",
    "batch_size": "DATA.BATCH_SIZE",
    "learning_rate": "TRAIN.BASE_LR",
    "aug_conditions": "AUG.CONDITIONS",
}


def _path(value: str | None) -> Path | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def job_config(p: TrainParams) -> Config:
    """The training config of a job: its YAML (default configs/demo.yaml) with the job's
    overrides (epochs, batch size, learning rate, AUG.CONDITIONS) applied."""
    from spai.config import load_config

    opts = [(key, getattr(p, name)) for name, key in PARAM_TO_KEY.items() if getattr(p, name) is not None]
    return load_config(_path(p.cfg) or DEFAULT_CFG, opts)


def run_train(ctx: JobContext) -> dict[str, Any]:
    from spai.training import CKPT_LAST, TrainOptions, train

    p: TrainParams = ctx.params
    cfg_path = _path(p.cfg) or DEFAULT_CFG
    cfg = job_config(p)
    output = _path(p.output) or REPO_ROOT / "data" / "train" / str(p.tag or ctx.job_id)
    resume = _path(p.resume)
    if resume is None and (output / CKPT_LAST).is_file():
        resume = output / CKPT_LAST  # restarted after a crash or a cancel: continue
        ctx.log(f"resuming from {resume}")
    options = TrainOptions(
        data_path=_path(p.data_path),
        csv_root_dir=_path(p.csv_root_dir),
        output=output,
        pretrained=_path(p.pretrained),
        resume=resume,
        init_from=_path(p.init_from),
        device=p.device,
    )

    def on_progress(event: dict[str, Any]) -> bool:
        if event.get("type") == "step":
            ctx.progress(int(event["step"]), int(event.get("total_steps") or 0) or None)
        elif event.get("type") == "epoch":
            ctx.log(
                " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in event.items() if k != "type"
                )
            )
        return not ctx.should_stop()

    result = train(cfg, options, on_progress)
    ctx.check()  # a cancelled run ends as cancelled, its resume point kept
    ckpt = result.best_checkpoint or result.last_checkpoint
    name = f"trained-{p.tag or ctx.job_id}"
    with session_scope(ctx.url) as s:
        try:
            model_id = register_model(s, ckpt, name=name, cfg=cfg_path, origin=TRAINED, owner=ctx.owner)
        except ValueError:  # a resumed run: the name holds its earlier checkpoint
            model_id = register_model(
                s, ckpt, name=f"{name}-step{result.steps}", cfg=cfg_path, origin=TRAINED, owner=ctx.owner
            )
    return {
        "output": str(result.output),
        "best_checkpoint": str(ckpt),
        "best_epoch": result.best_epoch,
        "steps": result.steps,
        "model_id": model_id,
        "skipped_images": len(result.skipped),
    }


register_handler("train", run_train, params=TrainParams)
