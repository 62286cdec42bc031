"""The worker's train job: a tiny real training run, registered as a model, resumable."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from db import jobs
from db.models import Model
from db.session import session_scope
from jobs.worker import JobWorker, WorkerConfig
from spai.detector import Detector
from spai.training import CKPT_LAST, METRICS_FILE
from tiny_model import TINY_DIR


def test_train_job_runs_registers_model_and_resumes(sqlite_url: str, tmp_path: Path, tiny_training_csv: Path) -> None:
    data = tiny_training_csv
    cfg = tmp_path / "tiny_fast.yaml"
    cfg.write_text(
        f"BASE: ['{TINY_DIR / 'spai_tiny.yaml'}']\nDATA:\n  NUM_WORKERS: 0\n"
        "  AUGMENTED_VIEWS: 2\nTRAIN:\n  WARMUP_EPOCHS: 0\n"
    )
    out = tmp_path / "run"
    params = {
        "cfg": str(cfg),
        "data_path": str(data),
        "output": str(out),
        "tag": "tiny",
        "epochs": 1,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "device": "cpu",
    }
    with session_scope(sqlite_url) as s:
        job_id = jobs.enqueue(s, "train", params)
    assert JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve() == 1
    with session_scope(sqlite_url) as s:
        job = jobs.get_job(s, job_id)
        assert job.status == "done", job.traceback
        assert job.progress_done == job.progress_total == 3  # 6 training images / batch 2, one epoch
        model = s.scalars(select(Model).where(Model.id == job.result["model_id"])).one()
        assert model.origin == "trained" and Path(model.path).is_file()
    assert (out / CKPT_LAST).is_file() and (out / METRICS_FILE).is_file()
    det = Detector.load(model.path, cfg, "cpu")
    assert det.score_one(data.parent / "real0.png").ok

    # a second job on the same output folder continues from ckpt_last.pth (2 more epochs)
    with session_scope(sqlite_url) as s:
        job2 = jobs.enqueue(s, "train", dict(params, epochs=2))
    JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve()
    with session_scope(sqlite_url) as s:
        view = jobs.get_job(s, job2)
        assert view.status == "done", view.traceback
        assert "resuming from" in (view.log_tail or "")
        assert view.result["steps"] == 6


def test_train_job_fine_tunes_from_a_model(sqlite_url: str, tmp_path: Path, tiny_training_csv: Path) -> None:
    """init_from loads a model's weights before training (the Train page's "Start from the
    active model"); weights of another architecture fail with the reason."""
    import json

    import torch

    cfg = tmp_path / "tiny_fast.yaml"
    cfg.write_text(
        f"BASE: ['{TINY_DIR / 'spai_tiny.yaml'}']\nDATA:\n  NUM_WORKERS: 0\n"
        "  AUGMENTED_VIEWS: 1\nTRAIN:\n  WARMUP_EPOCHS: 0\n"
    )
    base = {
        "cfg": str(cfg),
        "data_path": str(tiny_training_csv),
        "epochs": 1,
        "batch_size": 2,
        "learning_rate": 0.0,
        "device": "cpu",
    }  # lr 0: the weights stay the loaded ones
    demo = Path(__file__).resolve().parent.parent / "weights" / "demo" / "spai_demo.pth"
    with session_scope(sqlite_url) as s:
        good = jobs.enqueue(
            s,
            "train",
            base | {"tag": "ft", "output": str(tmp_path / "ft"), "init_from": str(TINY_DIR / "spai_tiny_seed0.pth")},
        )
        bad = jobs.enqueue(s, "train", base | {"tag": "bad", "output": str(tmp_path / "bad"), "init_from": str(demo)})
        jobs.enqueue(s, "train", base | {"tag": "new", "output": str(tmp_path / "new")})
    assert JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve() == 3
    with session_scope(sqlite_url) as s:
        done, failed = jobs.get_job(s, good), jobs.get_job(s, bad)
    assert done.status == "done", done.traceback
    lines = [json.loads(x) for x in (tmp_path / "ft" / METRICS_FILE).read_text().splitlines()]
    assert any(x.get("init_from", "").endswith("spai_tiny_seed0.pth") for x in lines)
    start = torch.load(TINY_DIR / "spai_tiny_seed0.pth", map_location="cpu", weights_only=True)
    start = start.get("model", start)

    def last(run: str) -> dict:
        return torch.load(tmp_path / run / CKPT_LAST, map_location="cpu", weights_only=True)["model"]

    key = next(k for k in start if k.endswith("weight") and start[k].ndim == 2)
    # (the schedule's minimum learning rate moves the weights a little)
    assert torch.allclose(start[key], last("ft")[key], atol=1e-3)  # from the fixture's weights
    assert not torch.allclose(start[key], last("new")[key], atol=1e-3)  # from scratch: not
    assert failed.status == "failed" and "does not fit this SPAI configuration" in failed.traceback
