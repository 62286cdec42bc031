"""spai.batching: many images scored in crop groups, in order, equal to one-by-one scoring and
to the official fixture scores; bad inputs and a failing group stay per image."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from spai.__main__ import cli
from spai.batching import score_many, score_stream
from spai.detector import Detector, PreparedImage
from tiny_model import TINY_CFG, TINY_DIR, TINY_IMAGES, TINY_WEIGHTS

IMAGES = sorted(TINY_IMAGES.iterdir())  # 45 crops in all: 5, 5, 12, 5, 5, 4, 5, 4
CROPS = [5, 5, 12, 5, 5, 4, 5, 4]


def _expected() -> dict[str, float]:
    with open(TINY_DIR / "expected_scores.csv", newline="") as fh:
        return {r["image"]: float(r["score"]) for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.load(TINY_WEIGHTS, TINY_CFG, "cpu")


@pytest.fixture
def passes(det: Detector):
    """Crops per backbone call made through the detector (records, calls the real one)."""
    seen: list[int] = []
    real = det._forward_many

    def recording(images, chunk=None):
        seen.append(sum(len(det.model.layout(x.shape[1], x.shape[2]).boxes) for x in images))
        return real(images, chunk=chunk)

    det._forward_many = recording
    yield seen
    det._forward_many = real


@pytest.mark.parametrize(
    "max_crops,max_images,prefetch,groups",
    [
        (16, None, 0, [10, 12, 14, 9]),  # whole images, never above 16 crops
        (64, None, 2, [45]),  # all at once, decoding two ahead in a thread
        (64, 3, 0, [22, 14, 9]),
        (16, 1, 0, CROPS),  # one image at a time
    ],
)
def test_groups_match_fixture_and_one_by_one(
    det: Detector, passes: list[int], max_crops: int, max_images: int | None, prefetch: int, groups: list[int]
) -> None:
    alone = [det.score_one(p) for p in IMAGES]
    passes.clear()
    preds = list(score_stream(det, IMAGES, max_crops=max_crops, max_images=max_images, prefetch=prefetch))
    assert passes == groups
    expected = _expected()
    assert [p.source for p in preds] == [str(p) for p in IMAGES]
    for path, a, b in zip(IMAGES, alone, preds):
        assert b.ok and b.num_patches == a.num_patches and b.boxes == a.boxes
        assert abs(b.score - a.score) < 1e-6 and abs(b.logit - a.logit) < 1e-6
        assert abs(b.score - expected[path.name]) < 1e-5
        assert torch.allclose(torch.tensor(b.attention), torch.tensor(a.attention), atol=1e-6)
        assert b.seconds > 0


def test_bad_inputs_keep_their_place_and_never_join_a_group(det: Detector, passes: list[int]) -> None:
    items = [b"", IMAGES[0], b"not an image", IMAGES[5], IMAGES[7], b"\x89PNG\r\n\x1a\nbroken"]
    names = ["empty", "a", "junk", "b", "c", "png"]
    preds = list(score_stream(det, items, names=names, max_crops=8))
    assert [p.source for p in preds] == names
    assert [p.ok for p in preds] == [False, True, False, True, True, False]
    assert preds[0].error == "empty input (0 bytes)" and preds[0].score is None
    assert "not an image" in preds[2].error
    assert passes == [5, 8]  # 5 | 4 + 4
    expected = _expected()
    for pred, path in zip([preds[1], preds[3], preds[4]], [IMAGES[0], IMAGES[5], IMAGES[7]]):
        assert abs(pred.score - expected[path.name]) < 1e-5


def test_a_group_that_fails_is_scored_image_by_image(det: Detector) -> None:
    good = det.prepare_image(IMAGES[0])
    # decodes fine but cannot go through the model: 4 channels
    odd = PreparedImage(good.image, torch.zeros(4, 224, 224))
    preds = list(score_stream(det, [IMAGES[5], odd, good], names=["a", "odd", "b"]))
    assert [p.ok for p in preds] == [True, False, True]
    assert preds[1].error.startswith("scoring failed: RuntimeError")
    expected = _expected()
    assert abs(preds[0].score - expected[IMAGES[5].name]) < 1e-5
    assert abs(preds[2].score - expected[IMAGES[0].name]) < 1e-5


def test_should_stop_is_asked_before_each_group(det: Detector, passes: list[int]) -> None:
    asked = []

    def stop() -> bool:
        asked.append(len(passes))
        return len(passes) == 2

    preds = score_many(det, IMAGES, should_stop=stop, max_images=2)
    # groups: 0+1 | 2 (12 crops; 2 would be 17 > 16) | 3+4: stopped before the third
    assert asked == [0, 1, 2] and len(preds) == 3
    assert [p.source for p in preds] == [str(p) for p in IMAGES[:3]]
    with pytest.raises(ValueError, match="max_images must be at least 1"):
        list(score_stream(det, IMAGES, max_images=0))


def test_detector_score_batches_and_reports_progress(det: Detector, passes: list[int]) -> None:
    seen = []
    preds = det.score(IMAGES[:3], on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert passes == [10, 12]  # the detector's chunk is the fixture's 16
    assert all(p.ok for p in preds)


def test_infer_cli_batch_sizes_agree(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in IMAGES:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "05b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    got = {}
    for size in ("1", "3"):
        out = tmp_path / f"out{size}"
        res = CliRunner().invoke(
            cli,
            [
                "infer",
                "-i",
                str(folder),
                "-m",
                str(TINY_WEIGHTS),
                "--cfg",
                str(TINY_CFG),
                "-o",
                str(out),
                "--batch-size",
                size,
                "--device",
                "cpu",
            ],
        )
        assert res.exit_code == 0, res.output
        assert "8 scored, 1 failed" in res.output
        with open(out / "mixed.csv", newline="") as fh:
            got[size] = {r["image"]: r for r in csv.DictReader(fh)}
    expected = _expected()
    for name, score in expected.items():
        assert abs(float(got["3"][name]["spai"]) - score) < 1e-5
        assert abs(float(got["3"][name]["spai"]) - float(got["1"][name]["spai"])) < 1e-6
    assert got["3"]["05b_broken.png"]["error"] and got["3"]["05b_broken.png"]["spai"] == ""
    res = CliRunner().invoke(
        cli,
        [
            "infer",
            "-i",
            str(folder),
            "-m",
            str(TINY_WEIGHTS),
            "--cfg",
            str(TINY_CFG),
            "-o",
            str(tmp_path / "x"),
            "--batch-size",
            "0",
        ],
    )
    assert res.exit_code == 2 and "--batch-size" in res.output


def test_onnx_backend_batches_across_images(tmp_path: Path) -> None:
    onnx = Detector.load(TINY_WEIGHTS, TINY_CFG, "cpu")
    onnx.use_onnx(tmp_path / "onnx")
    preds = list(score_stream(onnx, [IMAGES[0], b"junk", *IMAGES[1:]], max_crops=16))
    assert [p.ok for p in preds] == [True, False] + [True] * (len(IMAGES) - 1)
    expected = _expected()
    for path, pred in zip(IMAGES, [preds[0], *preds[2:]]):
        assert pred.num_patches == CROPS[IMAGES.index(path)]
        assert abs(pred.score - expected[path.name]) < 1e-5
        assert len(pred.attention_mean) == pred.num_patches
