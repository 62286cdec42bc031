"""spai.overlay: the attention colour scales."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spai.overlay import overlay_image, overlay_scale

BOXES = [(0, 0, 10, 10), (10, 0, 20, 10), (0, 10, 10, 20), (10, 10, 20, 20), (5, 5, 15, 15)]


def test_near_uniform_attention_stays_grey_on_the_fixed_scale() -> None:
    """Regression: attention 0.198-0.201 over five crops was drawn as strong red/blue blocks."""
    w = np.array([0.198, 0.2, 0.201, 0.2, 0.201])
    scale = overlay_scale(w, "uniform")
    assert scale.mid == pytest.approx(w.mean())
    assert np.abs(scale.position(w) - 0.5).max() < 0.01  # all at neutral grey
    assert "grey = uniform attention" in scale.describe()
    stretched = overlay_scale(w, "stretch")
    assert stretched.position(w).min() == 0.0 and stretched.position(w).max() == 1.0
    assert "a difference of 0.0030" in stretched.describe()  # the scale says how small it is
    img = Image.new("RGB", (20, 20), (128, 128, 128))
    fixed, _ = overlay_image(img, BOXES, w, opacity=1.0, scale="uniform")
    px = np.asarray(fixed, dtype=int).reshape(-1, 3)
    assert (px.max(axis=1) - px.min(axis=1)).max() < 12  # no strong hue anywhere


def test_fixed_scale_shows_real_differences() -> None:
    w = np.array([0.05, 0.05, 0.05, 0.05, 0.8])  # one crop takes 80% of the attention
    pos = overlay_scale(w, "uniform").position(w)
    assert pos[-1] > 0.9 and pos[0] < 0.2
    with pytest.raises(ValueError, match="overlay scale must be one of"):
        overlay_scale(w, "log")
