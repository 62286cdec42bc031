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
from db.imagesets import register_labelled_folder
from db.models import ImageSet, Model
from db.owners import LOCAL
from db.session import session_scope
from db.training_sets import write_training_csv
from tiny_model import TINY_CFG, TINY_IMAGES

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "dashboard" / "views" / "train.py")
FAST = [
    ("DATA.BATCH_SIZE", "2"),
    ("DATA.NUM_WORKERS", "0"),
    ("TRAIN.EPOCHS", "2"),
    ("TRAIN.WARMUP_EPOCHS", "0"),
    ("DATA.AUGMENTED_VIEWS", "1"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2-epoch training run of the tiny model on 6 tiny images; returns its folder."""
    from spai.config import load_config
    from spai.training import TrainOptions, train

    root = tmp_path_factory.mktemp("train")
    photo = np.asarray(Image.open(TINY_IMAGES / "07_photo_640x427.jpg").convert("RGB"))
    rows = []
    for i in range(3):
        crop = Image.fromarray(photo[40 * i : 40 * i + 224, 100 * i : 100 * i + 224])
        crop.save(root / f"r{i}.png")
        crop.filter(ImageFilter.GaussianBlur(3)).save(root / f"f{i}.png")
        split = "val" if i == 2 else "train"
        rows += [(f"r{i}.png", 0, split), (f"f{i}.png", 1, split)]
    with (root / "data.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("image", "class", "split"), *rows])
    out = root / "run"
    train(load_config(TINY_CFG, FAST), TrainOptions(data_path=root / "data.csv", output=out, device="cpu"))
    return out


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _sets(url: str, tmp: Path, n: int = 5) -> None:
    """Registered real (photo crops) and fake (the crops blurred) sets of n images each."""
    photo = Image.open(TINY_IMAGES / "07_photo_640x427.jpg").convert("RGB")
    for kind in ("real", "fake"):
        (tmp / "mine" / kind).mkdir(parents=True)
        for i in range(n):
            crop = photo.crop((40 * i, 30 * i, 40 * i + 120, 30 * i + 100))
            if kind == "fake":
                crop = crop.filter(ImageFilter.GaussianBlur(2))
            crop.save(tmp / "mine" / kind / f"{i}.png")
    with session_scope(url) as s:
        register_labelled_folder(s, tmp / "mine", name="mine")


def test_empty_and_form_validation(page_store) -> None:
    url, tmp = page_store
    at = _page()
    assert not at.exception and "No training jobs yet." in at.info[0].value
    at.button(key="train.queue").click().run()
    assert "choose at least one real and one fake image set" in at.error[0].value
    at.text_input(key="train.data").input("/etc/passwd")  # outside SPAI_DATA_ROOTS
    at.button(key="train.queue").click().run()
    assert "training CSV '/etc/passwd' is outside the folders" in at.error[0].value
    at.text_input(key="train.data").input(str(tmp / "data" / "missing.csv"))
    at.button(key="train.queue").click().run()
    assert "training CSV not found" in at.error[0].value
    at.text_input(key="train.tag").input("../escape").run()
    at.button(key="train.queue").click().run()
    assert "run name '../escape'" in at.error[0].value
    with session_scope(url, readonly=True) as s:
        assert jobqueue.recent(s) == []


def test_train_from_registered_sets_demo_preset_fine_tunes_active_model(page_store) -> None:
    """Regression: the CSV path had to be typed by hand and the default config was the full
    ViT-B; now the CSV is built from the chosen sets, the CPU-sized demo preset is the default
    and the run starts from the active model."""
    url, tmp = page_store
    _sets(url, tmp)
    at = _page()
    assert at.radio(key="train.preset").value.startswith("Demo model size")
    assert at.radio(key="train.start").value.startswith("the active model (spai_demo.pth)")
    at.multiselect(key="train.real").set_value(["mine-real"])
    at.multiselect(key="train.fake").set_value(["mine-fake"]).run()
    at.button(key="train.queue").click().run()
    assert not at.exception
    assert "Queued training job 1 (finetune)." in at.success[0].value
    assert "4 train real, 4 train fake, 1 val real, 1 val fake" in at.caption[0].value
    with session_scope(url, readonly=True) as s:
        job = jobqueue.status(s, 1)
    p = job.params
    assert job.kind == "train" and p["cfg"] == "configs/demo.yaml" and p["epochs"] == 5
    assert p["output"] == str(tmp / "data" / "train" / "finetune")
    assert p["init_from"].endswith("weights/demo/spai_demo.pth")
    rows = list(csv.DictReader(open(p["data_path"])))
    root = Path(p["csv_root_dir"])
    assert root == (tmp / "mine").resolve()
    assert sorted({r["image"].split("/")[0] for r in rows}) == ["fake", "real"]
    assert all((root / r["image"]).is_file() for r in rows)
    assert at.text_input(key="train.tag").value == "finetune"  # the user's value is kept ...
    assert _page().text_input(key="train.tag").value == "finetune-2"  # ... a new visit: free


def test_conditions_picked_as_training_augmentation_reach_the_job_config(page_store) -> None:
    """Issue 17.3: the Train page's AUG.CONDITIONS picker; the queued job's config carries the
    chosen conditions with their probability (and an unchosen picker adds nothing)."""
    from jobs.params import TrainParams
    from jobs.train import job_config

    url, tmp = page_store
    _sets(url, tmp)
    at = _page()
    assert at.multiselect(key="train.aug").value == []
    at.multiselect(key="train.real").set_value(["mine-real"])
    at.multiselect(key="train.fake").set_value(["mine-fake"])
    assert at.slider(key="train.aug_p").disabled  # no condition chosen: nothing to weigh
    at.multiselect(key="train.aug").set_value(["meme", "screenshot"]).run()
    at.slider(key="train.aug_p").set_value(0.3).run()
    at.button(key="train.queue").click().run()
    assert not at.exception and at.success
    with session_scope(url, readonly=True) as s:
        p = jobqueue.status(s, 1).params
    assert p["aug_conditions"] == [{"id": "meme", "p": 0.3}, {"id": "screenshot", "p": 0.3}]
    params = TrainParams.from_dict(p)
    assert job_config(params).aug.conditions == (("meme", 0.3), ("screenshot", 0.3))
    assert job_config(TrainParams.from_dict(dict(p, aug_conditions=None))).aug.conditions == ()


def test_existing_run_name_refused_unless_resume(page_store) -> None:
    """Regression: the default name silently resumed or re-registered an earlier run."""
    url, tmp = page_store
    _sets(url, tmp)
    at = _page()
    at.multiselect(key="train.real").set_value(["mine-real"])
    at.multiselect(key="train.fake").set_value(["mine-fake"]).run()
    at.text_input(key="train.tag").input("mine").run()
    at.button(key="train.queue").click().run()
    assert "Queued training job 1 (mine)." in at.success[0].value
    at.button(key="train.queue").click().run()
    assert "a run named 'mine' exists" in at.error[0].value
    with session_scope(url) as s:
        jobqueue.cancel(s, 1, actor=LOCAL)  # (a resume of a run still queued is that same job)
    at.checkbox(key="train.resume").check().run()
    at.button(key="train.queue").click().run()
    assert "Queued training job 2 (mine)." in at.success[0].value
    assert at.selectbox(key="train.pick").value == 2  # regression: stayed on job 1
    # regression: the labels carried a status that went stale ("(queued)" on a cancelled run)
    assert at.selectbox(key="train.pick").options == ["#2 mine", "#1 mine"]
    at.text_input(key="train.tag").input("never-run").run()
    at.button(key="train.queue").click().run()
    assert "no run named 'never-run' to resume" in at.error[0].value
    with session_scope(url, readonly=True) as s:
        assert [j.id for j in jobqueue.recent(s)] == [2, 1]


def test_training_csv_is_seeded_and_stays_in_its_root(page_store) -> None:
    url, tmp = page_store
    _sets(url, tmp, n=10)
    with session_scope(url) as s:
        ids = {n: i for i, n in s.execute(select(ImageSet.id, ImageSet.name))}
        a = write_training_csv(s, tmp / "a.csv", real_ids=[ids["mine-real"]], fake_ids=[ids["mine-fake"]], seed=3)
        b = write_training_csv(s, tmp / "b.csv", real_ids=[ids["mine-real"]], fake_ids=[ids["mine-fake"]], seed=3)
        c = write_training_csv(s, tmp / "c.csv", real_ids=[ids["mine-real"]], fake_ids=[ids["mine-fake"]], seed=4)
        with pytest.raises(ValueError, match="is fake, not real"):
            write_training_csv(s, tmp / "d.csv", real_ids=[ids["mine-fake"]], fake_ids=[ids["mine-fake"]])
    assert a.path.read_text() == b.path.read_text() != c.path.read_text()
    assert a.counts == {"train real": 8, "train fake": 8, "val real": 2, "val fake": 2}
    # a file that links outside the root is left out, not written
    (tmp / "mine" / "real" / "0.png").unlink()
    (tmp / "mine" / "real" / "0.png").symlink_to(TINY_IMAGES / "07_photo_640x427.jpg")
    with session_scope(url) as s:
        d = write_training_csv(s, tmp / "d.csv", real_ids=[ids["mine-real"]], fake_ids=[ids["mine-fake"]], seed=3)
    assert len(d.skipped) == 1 and "escapes the root" in d.skipped[0]
    assert "0.png" not in d.path.read_text().split("real/", 1)[1].split("\n")[0]


def test_curves_from_a_real_run_and_register(page_store, trained: Path) -> None:
    url, _ = page_store
    log = read_training_log(trained / "metrics.jsonl")
    assert len(log.steps) >= 2 and list(log.epochs["epoch"]) == [0, 1]
    with session_scope(url) as s:
        job_id = jobs.enqueue(s, "train", {"output": str(trained), "tag": "tiny", "cfg": str(TINY_CFG)})
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
