"""Detector.score_batch: the crops of several images through the backbone together, with the
scores, attention and geometry of one-by-one scoring; bad inputs get their error in place."""

from __future__ import annotations


import pytest
import torch

from spai.detector import Detector, PreparedImage
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

IMAGES = sorted(TINY_IMAGES.iterdir())  # grids and five-crops, 97x130 .. 1024x768


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.load(TINY_WEIGHTS, TINY_CFG, "cpu")


@pytest.fixture(scope="module")
def one_by_one(det: Detector) -> list:
    return [det.score_one(p) for p in IMAGES]


# 45 crops in all: chunks of 3 and 7 split images and mix them, 64 holds every crop at once
@pytest.mark.parametrize("chunk", [3, 7, 64])
def test_batch_equals_one_by_one(det: Detector, one_by_one: list, chunk: int) -> None:
    det.chunk, saved = chunk, det.chunk
    try:
        many = det.score_batch(IMAGES)
    finally:
        det.chunk = saved
    assert sum(p.num_patches for p in many) == 45
    one = one_by_one
    for a, b in zip(one, many):
        assert b.ok and b.source == a.source
        assert abs(a.score - b.score) < 1e-6 and abs(a.logit - b.logit) < 1e-6
        assert b.boxes == a.boxes and (b.width, b.height) == (a.width, a.height)
        assert (b.grid_rows, b.grid_cols, b.five_crop) == (a.grid_rows, a.grid_cols, a.five_crop)
        assert torch.allclose(torch.tensor(b.attention), torch.tensor(a.attention), atol=1e-6)
        assert torch.allclose(torch.tensor(b.similarity), torch.tensor(a.similarity), atol=1e-6)


def test_batch_keeps_order_and_reports_bad_inputs_in_place(det: Detector) -> None:
    prepared = det.prepare_image(IMAGES[2])
    assert isinstance(prepared, PreparedImage) and prepared.size == (1024, 768)
    preds = det.score_batch([b"not an image", prepared, b"", IMAGES[6]], names=["junk", "prepared", "empty", "photo"])
    assert [p.source for p in preds] == ["junk", "prepared", "empty", "photo"]
    assert "not an image" in preds[0].error and preds[0].score is None
    assert "empty input" in preds[2].error
    assert preds[1].ok and preds[3].ok
    assert abs(preds[1].score - det.score_one(IMAGES[2]).score) < 1e-6
    assert all(p.seconds > 0 for p in preds)
    assert det.score_batch([]) == []


def test_batch_of_only_bad_inputs(det: Detector) -> None:
    preds = det.score_batch([b"x", b"y"])
    assert [p.ok for p in preds] == [False, False]


def test_score_under_conditions_scores_each_variant_as_one_by_one(det: Detector) -> None:
    """The Score and Inspect pages' one function: variants seeded by the key, scored in one
    batch with the scores of one-by-one scoring; an unknown condition gets its error in place."""
    from robustness.apply import apply_condition, score_under_conditions

    img = det.prepare_image(IMAGES[-1]).image
    seen = []
    got = score_under_conditions(
        det, img, "key", ["jpeg/q75", "no/such", "original"], on_variant=lambda i, cid: seen.append((i, cid))
    )
    assert seen == [(0, "jpeg/q75"), (1, "no/such"), (2, "original")]
    assert [r.condition_id for r in got] == ["jpeg/q75", "no/such", "original"]
    bad = got[1]
    assert bad.image is None and bad.score is None and "no/such" in bad.error
    for r in (got[0], got[2]):
        variant, _ = apply_condition(img, r.condition_id, "key")
        assert r.error is None and r.image.tobytes() == variant.tobytes()
        assert abs(r.score - det.score_one(variant).score) < 1e-6
