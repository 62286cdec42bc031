"""The worker's train job: a tiny real training run, registered as a model, resumable."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

import dashboard.train_job  # noqa: F401  (registers the "train" handler)
from dashboard.worker import Worker, WorkerConfig
from db import jobs
from db.models import Model
from db.session import session_scope
from spai.detector import Detector
from spai.training import CKPT_LAST, METRICS_FILE

FIXTURE = Path(__file__).parent / "fixtures" / "spai-tiny"


def _data(root: Path) -> Path:
    photo = np.asarray(Image.open(FIXTURE / "images" / "07_photo_640x427.jpg").convert("RGB"))
    rows = []
    for i in range(3):
        crop = Image.fromarray(photo[40 * i: 40 * i + 240, 100 * i: 100 * i + 240])
        fake = Image.blend(crop, Image.new("RGB", crop.size, (128, 128, 128)), 0.8)
        crop.save(root / f"real{i}.png")
        fake.save(root / f"fake{i}.png")
        split = "val" if i == 2 else "train"
        rows += [(f"real{i}.png", 0, split), (f"fake{i}.png", 1, split)]
    with (root / "data.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "class", "split"])
        writer.writerows(rows)
    return root / "data.csv"


def test_train_job_runs_registers_model_and_resumes(sqlite_url: str, tmp_path: Path) -> None:
    data = _data(tmp_path)
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
        assert job.progress_done == job.progress_total == 2  # 4 training images / batch 2, one epoch
        model = s.scalars(select(Model).where(Model.id == job.result["model_id"])).one()
        assert model.origin == "trained" and Path(model.path).is_file()
    assert (out / CKPT_LAST).is_file() and (out / METRICS_FILE).is_file()
    det = Detector.load(model.path, cfg, "cpu")
    assert det.score_one(tmp_path / "real0.png").ok

    # a second job on the same output folder continues from ckpt_last.pth (2 more epochs)
    with session_scope(sqlite_url) as s:
        job2 = jobs.enqueue(s, "train", dict(params, epochs=2))
    Worker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve()
    with session_scope(sqlite_url) as s:
        view = jobs.get_job(s, job2)
        assert view.status == "done", view.traceback
        assert "resuming from" in (view.log_tail or "")
        assert view.result["steps"] == 4
