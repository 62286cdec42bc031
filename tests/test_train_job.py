"""The worker's train job: a tiny real training run, registered as a model, resumable."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

import dashboard.train_job  # noqa: F401  (registers the "train" handler)
from dashboard.worker import Worker, WorkerConfig
from db import jobs
from db.models import Model
from db.session import session_scope
from spai.detector import Detector
from spai.training import CKPT_LAST, METRICS_FILE

FIXTURE = Path(__file__).parent / "fixtures" / "spai-tiny"


def test_train_job_runs_registers_model_and_resumes(
    sqlite_url: str, tmp_path: Path, tiny_training_csv: Path
) -> None:
    data = tiny_training_csv
    cfg = tmp_path / "tiny_fast.yaml"
    cfg.write_text(f"BASE: ['{FIXTURE / 'spai_tiny.yaml'}']\nDATA:\n  NUM_WORKERS: 0\n"
                   "  AUGMENTED_VIEWS: 2\nTRAIN:\n  WARMUP_EPOCHS: 0\n")
    out = tmp_path / "run"
    params = {"cfg": str(cfg), "data_path": str(data), "output": str(out), "tag": "tiny",
              "epochs": 1, "batch_size": 2, "learning_rate": 1e-3, "device": "cpu"}
    with session_scope(sqlite_url) as s:
        job_id = jobs.enqueue(s, "train", params)
    assert Worker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve() == 1
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
    Worker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve()
    with session_scope(sqlite_url) as s:
        view = jobs.get_job(s, job2)
        assert view.status == "done", view.traceback
        assert "resuming from" in (view.log_tail or "")
        assert view.result["steps"] == 6
