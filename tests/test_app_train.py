"""Train page (AppTest): form validation, queuing a train job, live curves from the metrics.jsonl
that a real (tiny, CPU) spai.training.train run wrote, cancel, registering the result."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from dashboard import jobqueue
from dashboard.training_log import read_training_log
from db import jobs
from db.models import Model
from db.session import session_scope

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "dashboard" / "views" / "train.py")
TINY = ROOT / "tests" / "fixtures" / "spai-tiny"
FAST = [("DATA.BATCH_SIZE", "2"), ("DATA.NUM_WORKERS", "0"), ("TRAIN.EPOCHS", "2"),
        ("TRAIN.WARMUP_EPOCHS", "0"), ("DATA.AUGMENTED_VIEWS", "1")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2-epoch training run of the tiny model on 6 tiny images; returns its folder."""
    from spai.config import load_config
    from spai.training import TrainOptions, train

    root = tmp_path_factory.mktemp("train")
    photo = np.asarray(Image.open(TINY / "images" / "07_photo_640x427.jpg").convert("RGB"))
    rows = []
    for i in range(3):
        crop = Image.fromarray(photo[40 * i: 40 * i + 224, 100 * i: 100 * i + 224])
        crop.save(root / f"r{i}.png")
        crop.filter(ImageFilter.GaussianBlur(3)).save(root / f"f{i}.png")
        split = "val" if i == 2 else "train"
        rows += [(f"r{i}.png", 0, split), (f"f{i}.png", 1, split)]
    with (root / "data.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("image", "class", "split"), *rows])
    out = root / "run"
    train(load_config(TINY / "spai_tiny.yaml", FAST),
          TrainOptions(data_path=root / "data.csv", output=out, device="cpu"))
    return out


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def test_empty_and_form_validation(page_store) -> None:
    url, tmp = page_store
    at = _page()
    assert not at.exception and "No training jobs yet." in at.info[0].value
    at.text_input(key="train.data").input(str(tmp / "missing.csv"))
    at.button[0].click().run()
    assert "training CSV not found" in at.error[0].value
    with session_scope(url, readonly=True) as s:
        assert jobqueue.recent(s) == []


def test_queue_job_with_params(page_store) -> None:
    url, tmp = page_store
    data = tmp / "d.csv"
    data.write_text("image,class,split\n")
    at = _page()
    at.text_input(key="train.data").input(str(data))
    at.text_input(key="train.tag").input("mine")
    at.number_input(key="train.epochs").set_value(3)
    at.button[0].click().run()
    assert "Queued training job 1." in at.success[0].value
    with session_scope(url, readonly=True) as s:
        job = jobqueue.status(s, 1)
    assert job.kind == "train" and job.params["epochs"] == 3
    assert job.params["output"] == str(tmp / "data" / "train" / "mine")
    assert job.params["cfg"].endswith("configs/spai.yaml")
    at.button(key="train.cancel.1").click().run()  # a queued job is cancelled at once
    with session_scope(url, readonly=True) as s:
        assert jobqueue.status(s, 1).status == "cancelled"


def test_curves_from_a_real_run_and_register(page_store, trained: Path) -> None:
    url, _ = page_store
    log = read_training_log(trained / "metrics.jsonl")
    assert len(log.steps) >= 2 and list(log.epochs["epoch"]) == [0, 1]
    with session_scope(url) as s:
        job_id = jobs.enqueue(s, "train", {"output": str(trained), "tag": "tiny",
                                           "cfg": str(TINY / "spai_tiny.yaml")})
        jobs.claim(s, "test-worker", ["train"])
    at = _page()
    assert not at.exception
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(specs) == 3 and '"Loss"' in specs[0] and "val_auc" in specs[2]
    assert f"job {job_id}: running" in at.get("progress")[0].proto.text
    with session_scope(url) as s:
        jobs.finish(s, job_id, "test-worker", "done", result={})
    at = _page()
    at.text_input(key=f"train.model_name.{job_id}").input("my-tiny")
    register = [b for b in at.button if b.key == f"train.register.{job_id}"][0]
    register.click().run()
    assert "Registered model" in at.success[0].value
    with session_scope(url, readonly=True) as s:
        model = s.scalars(select(Model).where(Model.name == "my-tiny")).one()
    assert model.origin == "trained" and Path(model.path).name.startswith("ckpt_")
    assert model.config["cfg_path"].endswith("spai_tiny.yaml")
