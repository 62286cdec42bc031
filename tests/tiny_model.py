"""The tiny real SPAI fixture (``tests/fixtures/spai-tiny``: the real architecture at tiny
dimensions, its seeded weights and config, and small images), named once for every test.

Test modules import these paths (``from tiny_model import TINY_WEIGHTS, TINY_CFG``); a plain
module, because ``from conftest import ...`` resolves to ``tests/e2e/conftest.py`` once the
e2e folder has been collected.
"""

from __future__ import annotations

from pathlib import Path

TINY_DIR = Path(__file__).resolve().parent / "fixtures" / "spai-tiny"
TINY_WEIGHTS = TINY_DIR / "spai_tiny_seed0.pth"
TINY_CFG = TINY_DIR / "spai_tiny.yaml"
TINY_IMAGES = TINY_DIR / "images"  # grids, five-crops and a photo, 97x130 .. 1024x768
TINY_PHOTO = TINY_IMAGES / "07_photo_640x427.jpg"
