"""spai.visualize: spectra, low/high views and the per-patch table (on the tiny real model)."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from spai.visualize import (
    SIMILARITY_STATS,
    center_crop,
    crop_box,
    log_spectrum,
    low_high_views,
    patch_table,
    similarity_by_stat,
    to_grey_image,
)
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS


def _stripes(width: int = 128, height: int = 96, period: int = 8) -> Image.Image:
    x = np.arange(width)
    row = 127.5 + 100 * np.cos(2 * np.pi * x / period)
    arr = np.repeat(np.tile(row, (height, 1))[..., None], 3, axis=2)
    return Image.fromarray(np.round(arr).astype(np.uint8), "RGB")


def test_log_spectrum_is_centred_and_peaks_at_the_stripe_frequency() -> None:
    spec = log_spectrum(_stripes(128, 96, period=8))
    assert spec.shape == (96, 128)
    cy, cx = 96 // 2, 128 // 2
    peak = np.unravel_index(np.argmax(spec), spec.shape)
    assert peak[0] == cy  # horizontal stripes only: energy on the centre row
    assert abs(peak[1] - cx) == 128 // 8  # frequency = width / period bins from the centre
    assert spec[cy, cx] < spec[peak]  # the mean was removed, DC is not the peak


def test_log_spectrum_accepts_grey_arrays() -> None:
    grey = np.asarray(_stripes().convert("L"))
    assert log_spectrum(grey).shape == grey.shape


def test_to_grey_image_scales_and_rejects_3d() -> None:
    img = to_grey_image(np.linspace(0, 1, 100).reshape(10, 10))
    arr = np.asarray(img)
    assert img.mode == "L" and arr.min() == 0 and arr.max() == 255
    assert np.asarray(to_grey_image(np.ones((4, 4)))).max() == 0  # constant -> no NaN
    with pytest.raises(ValueError, match="2-D"):
        to_grey_image(np.zeros((2, 2, 3)))


def test_center_crop_geometry() -> None:
    assert crop_box(500, 300) == (138, 38, 362, 262)
    assert crop_box(100, 300) == (0, 38, 100, 262)
    assert center_crop(Image.new("RGB", (500, 300))).size == (224, 224)


def test_low_high_views_radius_extremes() -> None:
    crop = center_crop(_stripes(300, 300, period=4))
    arr = np.asarray(crop, dtype=np.int16)
    low0, high0 = low_high_views(crop, radius=0)
    assert np.asarray(low0).max() == 0  # nothing passes an empty disc
    assert np.abs(np.asarray(high0, dtype=np.int16) - arr).max() <= 1
    low_all, high_all = low_high_views(crop, radius=400)
    assert np.abs(np.asarray(low_all, dtype=np.int16) - arr).max() <= 1
    assert np.asarray(high_all).max() == 0


def test_low_high_views_split_the_stripes_by_radius() -> None:
    crop = center_crop(_stripes(300, 300, period=4))  # 56 cycles per 224 px: high frequency
    low, high = low_high_views(crop, radius=16)
    assert np.asarray(low, dtype=np.float64).std() < 1.0  # stripes removed from the low view
    assert np.asarray(high, dtype=np.float64).std() > 20.0
    with pytest.raises(ValueError, match="radius"):
        low_high_views(crop, radius=-1)


def test_low_high_views_resizes_small_crops() -> None:
    low, high = low_high_views(Image.new("RGB", (50, 60), (10, 20, 30)), radius=16)
    assert low.size == high.size == (224, 224)


def test_similarity_by_stat_layout_and_errors() -> None:
    sim = np.arange(2 * 6 * 3).reshape(2, 18)
    out = similarity_by_stat(sim)
    assert out.shape == (2, 6, 3)
    assert out[1, 2, 0] == sim[1, 6]  # stat-major: stat 2, layer 0
    with pytest.raises(ValueError, match="6N"):
        similarity_by_stat(np.zeros((2, 7)))


def test_patch_table_from_a_real_prediction() -> None:
    from spai.detector import Detector

    det = Detector.load(TINY_WEIGHTS, cfg=TINY_CFG, device="cpu")
    pred = det.score_one(TINY_IMAGES / "02_rgb_500x300.png")
    assert pred.ok, pred.error
    table = patch_table(pred.boxes, pred.attention, pred.similarity, grid_cols=pred.grid_cols)
    assert len(table) == pred.num_patches
    assert np.allclose(table["attention"], pred.attention_mean, atol=1e-6)
    assert table["attention_share"].sum() == pytest.approx(1.0)
    heads = [c for c in table.columns if c.startswith("head_")]
    assert len(heads) == len(pred.attention)
    for name in SIMILARITY_STATS:
        assert table[name].between(-1.0001, 1.0001).all()
    sims = similarity_by_stat(pred.similarity)
    assert table[SIMILARITY_STATS[0]].iloc[0] == pytest.approx(sims[0, 0].mean())
    if pred.grid_cols:
        assert table["row"].iloc[-1] == (pred.num_patches - 1) // pred.grid_cols


def test_patch_table_rejects_mismatched_attention() -> None:
    with pytest.raises(ValueError):
        patch_table([(0, 0, 224, 224), (224, 0, 448, 224)], [[0.1, 0.2, 0.3]], [])


def test_tensor_to_image_round_trips_uint8() -> None:
    import torch

    from spai.visualize import tensor_to_image

    arr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    x = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1)
    assert np.array_equal(np.asarray(tensor_to_image(x)), arr)
    with pytest.raises(ValueError, match="3 x H x W"):
        tensor_to_image(torch.zeros(1, 3, 4, 4))
