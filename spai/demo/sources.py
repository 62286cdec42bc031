"""Real photographs that install offline, used as the real half of the demo data set.

Sources (whatever subset is installed is used; `discover_sources()` says which):

- scikit-learn's bundled sample photos (``sklearn/datasets/images``),
- scikit-image's bundled RGB photos (``skimage/data``; read from the package folder directly,
  because the ``skimage.data`` loaders for non-bundled files need ``pooch`` and the network),
- the Debian ``mate-backgrounds`` nature photos and ``plasma-workspace-wallpapers`` photos
  (the illustrations Autumn and PastelHills left out), shipped unmodified in ``photos/`` next to
  this module with their licences (``photos/README.md`` lists each file's origin), so every
  clone builds the same set whether or not those packages are installed.

Each photo gets a stable id (``"<origin>/<name>"``) used for the split and in file names.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

__all__ = ["PhotoSource", "discover_sources", "load_photo"]

SKIMAGE_PHOTOS: dict[str, str] = {
    # file name -> licence (as stated in scikit-image's data documentation)
    "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "coffee.png": "CC0 (Rachel Michetti)",
    "rocket.jpg": "public domain (SpaceX)",
    "motorcycle_left.png": "Middlebury stereo data set (scikit-image data, research use)",
    "motorcycle_right.png": "Middlebury stereo data set (scikit-image data, research use)",
    "hubble_deep_field.jpg": "public domain (NASA/ESA)",
    "retina.jpg": "CC-BY 4.0 (Mikael Haggstrom)",
}
SAME_SCENE: dict[str, str] = {
    # a stereo pair: two views of one scene must never sit in different splits
    "motorcycle_left.png": "motorcycle",
    "motorcycle_right.png": "motorcycle",
}
SKLEARN_PHOTOS: dict[str, str] = {
    "china.jpg": "CC-BY 2.0 (danielbuechele, Flickr)",
    "flower.jpg": "CC-BY 2.0 (Vlasta Juricek, Flickr)",
}
PHOTOS_DIR = Path(__file__).parent / "photos"  # shipped copies (see photos/README.md)
MATE_DIR = PHOTOS_DIR / "mate"  # /usr/share/backgrounds/mate/nature/*.jpg
PLASMA_DIR = PHOTOS_DIR / "plasma"  # /usr/share/wallpapers/<Name>/contents/images/2560x1600.jpg
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class PhotoSource:
    """One real photograph: stable id, file path, origin package and licence."""

    id: str  # "<origin>/<stem>", stable across machines; used for the split
    path: Path
    origin: str  # package the photo ships in
    licence: str
    group: str = ""  # photos of one scene share a group (kept in one split); "" = own id

    @property
    def split_key(self) -> str:
        """The unit of the train/val/test split: the group, else the photo itself."""
        return self.group or self.id


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _bundled(module: str, subdir: str, files: dict[str, str], origin: str) -> list[PhotoSource]:
    root = _package_dir(module)
    if root is None:
        return []
    out = []
    for name, licence in files.items():
        path = root / subdir / name
        if path.is_file():
            group = f"{origin}/{SAME_SCENE[name]}" if name in SAME_SCENE else ""
            out.append(PhotoSource(f"{origin}/{Path(name).stem}", path, origin, licence, group))
    return out


def _mate(root: Path) -> list[PhotoSource]:
    if not root.is_dir():
        return []
    return [
        PhotoSource(f"mate/{p.stem}", p, "mate-backgrounds (Debian)", "GPL-2+")
        for p in sorted(root.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ]


def _plasma(root: Path) -> list[PhotoSource]:
    if not root.is_dir():
        return []
    return [
        PhotoSource(f"plasma/{p.stem}", p, "plasma-workspace-wallpapers (Debian)", "LGPL-3")
        for p in sorted(root.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ]


def discover_sources(mate_dir: Path = MATE_DIR, plasma_dir: Path = PLASMA_DIR) -> list[PhotoSource]:
    """All available real photos (bundled with pip packages or shipped here), sorted by id (the order never depends on the file system)."""
    found = (
        _bundled("sklearn.datasets", "images", SKLEARN_PHOTOS, "sklearn")
        + _bundled("skimage", "data", SKIMAGE_PHOTOS, "skimage")
        + _mate(mate_dir)
        + _plasma(plasma_dir)
    )
    return sorted(found, key=lambda s: s.id)


def load_photo(source: PhotoSource) -> Image.Image:
    """Decode a photo as RGB (alpha dropped, grey replicated)."""
    with Image.open(source.path) as img:
        return img.convert("RGB")
