"""Detector: load SPAI once, score images, return everything a user may want to inspect.

    det = Detector.load("weights/spai.pth")                 # official weights, configs/spai.yaml
    det = Detector.load("tests/fixtures/spai-tiny/spai_tiny_seed0.pth",
                        cfg="tests/fixtures/spai-tiny/spai_tiny.yaml")
    preds = det.score(["a.png", pil_image], on_progress=lambda done, total: ...)  # batched
    preds[0].score, preds[0].attention_mean, preds[0].boxes
    prepared = det.prepare_image(upload_bytes)       # decode once, show and score many times
    preds = det.score_batch([prepared, variant_a, variant_b])  # crops of all images batched

Scoring never raises for a bad image: its ImageResult carries an ``error`` and no score.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import torch

from spai.batching import score_many
from spai.checkpoint import extract_state_dict, file_sha256, load_state, read_checkpoint
from spai.config import Config, config_from_dict, load_config
from core.imageio import DEFAULT_MAX_PIXELS, ImageLoadError, ImageSource, open_rgb, to_model_input
from spai.model import SPAI, build_model
from spai.results import ImageResult, PreparedImage, ProgressFn, Scorable, name_of
from spai.weights import OFFICIAL_CONFIG, default_weights, origin_of

__all__ = [
    "ModelInfo",
    "ImageResult",
    "PreparedImage",
    "Detector",
    "resolve_device",
]

BYTES_PER_CROP_PER_DIM = 40_000  # rough peak activation bytes per crop per embed dim (3 views)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    sha256: str
    origin: str  # one of spai.weights.ORIGINS
    config: dict[str, Any]
    extra_keys: tuple[str, ...] = ()

    @property
    def is_demo(self) -> bool:
        return self.origin == "demo"


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no CUDA device is available")
    return torch.device(device)


def _config_for(weights: Path, cfg: str | Path | None, state_obj: dict[str, Any]) -> Config:
    if cfg is not None:
        return load_config(cfg)
    sidecar = weights.with_suffix(".yaml")
    if sidecar.is_file():
        return load_config(sidecar)
    stored = state_obj.get("config")
    if isinstance(stored, dict) and "MODEL" in stored:
        return config_from_dict(stored)
    return load_config(OFFICIAL_CONFIG)


class Detector:
    """A loaded SPAI model on one device. Thread-safe: forward passes are serialised."""

    def __init__(
        self,
        model: SPAI,
        info: ModelInfo,
        device: torch.device,
        *,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        resize_to: int | None = None,
        chunk: int | None = None,
    ) -> None:
        self.model = model.eval().to(device)
        self.info = info
        self.device = device
        self.max_pixels = max_pixels
        self.resize_to = resize_to
        self.chunk = chunk or self._auto_chunk()
        self.backend = "torch"
        self._forward = self.model.forward_image  # (3 x H x W, chunk) -> PatchOutput
        self._forward_many = self.model.forward_images  # ([3 x H x W], chunk) -> [PatchOutput]
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------

    @classmethod
    def load(
        cls,
        weights: str | Path | None = None,
        cfg: str | Path | None = None,
        device: str = "auto",
        *,
        opts: Sequence[tuple[str, Any]] = (),
        origin: str | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        resize_to: int | None = None,
        chunk: int | None = None,
        expect_sha256: str | None = None,
    ) -> Detector:
        """Build the model from its config and load the weights (see spai.checkpoint);
        ``expect_sha256`` refuses a file whose content is not the one registered."""
        path = Path(weights) if weights is not None else default_weights()
        obj = read_checkpoint(path, expect_sha256=expect_sha256)
        config = _config_for(path, cfg, obj)
        if opts:
            config = config.with_opts(opts)
        model = build_model(config)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            extra = load_state(model, extract_state_dict(obj), source=str(path))
        for w in caught:
            warnings.warn(w.message, stacklevel=2)
        info = ModelInfo(
            name=path.stem,
            path=str(path),
            sha256=file_sha256(path),
            origin=origin or origin_of(path),
            config=config.to_dict(),
            extra_keys=tuple(extra),
        )
        return cls(
            model,
            info,
            resolve_device(device),
            max_pixels=max_pixels,
            resize_to=resize_to if resize_to is not None else config.test.max_size,
            chunk=chunk,
        )

    def _auto_chunk(self) -> int:
        """Crops per backbone call, from the memory the device has free (bounded peak memory)."""
        cfg = self.model.cfg.model
        per_crop = BYTES_PER_CROP_PER_DIM * cfg.vit.embed_dim
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = free * 0.5
        else:
            budget = min(_available_memory() * 0.25, 0.5e9)
        return int(max(1, min(cfg.feature_extraction_batch, budget // per_crop, 64)))

    def use_onnx(self, onnx_dir: str | Path) -> None:
        """Score with onnxruntime on exported graphs (exported into onnx_dir if missing).

        Geometry, attention and logits come from the graphs; the per-patch similarity
        statistics are not among their outputs and are left empty.
        """
        from spai.model import PatchOutput
        from spai.onnx_backend import AGGREGATOR_FILE, ENCODER_FILE, OnnxModel, export_onnx

        onnx_dir = Path(onnx_dir)
        if not ((onnx_dir / ENCODER_FILE).is_file() and (onnx_dir / AGGREGATOR_FILE).is_file()):
            export_onnx(self.model, onnx_dir)
        onnx = OnnxModel(onnx_dir, self.model, chunk=self.chunk)

        def output(logit: float, attn: Any) -> PatchOutput:
            n = attn.shape[-1]
            return PatchOutput(
                torch.tensor(logit), torch.from_numpy(attn), torch.empty(n, 0), torch.zeros(n, 6, 0), torch.empty(0)
            )

        def forward_many(images: Sequence[torch.Tensor], chunk: int | None = None) -> list[PatchOutput]:
            return [output(*r) for r in onnx.forward_images([x.cpu() for x in images])]

        self._forward = lambda image, chunk=None: forward_many([image], chunk)[0]
        self._forward_many = forward_many
        self.backend = "onnx"

    # -- scoring --------------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self.model.cfg

    def prepare(self, source: ImageSource) -> tuple[torch.Tensor, tuple[int, int]]:
        """Decode and pad one image: (3 x H x W tensor in [0,1], (width, height) decoded)."""
        prepared = self.prepare_image(source)
        return prepared.tensor, prepared.size

    def prepare_image(self, source: ImageSource) -> PreparedImage:
        """Decode one image (under the pixel cap) and build its model input; raises
        ``ImageLoadError`` for input that cannot be scored."""
        img = open_rgb(source, self.max_pixels)
        return PreparedImage(img, to_model_input(img, self.model.img_size, self.resize_to))

    def try_prepare(self, source: Scorable) -> PreparedImage | str:
        """``prepare_image``, or why the input cannot be scored (never raises for bad input)."""
        if isinstance(source, PreparedImage):
            return source
        try:
            return self.prepare_image(source)
        except ImageLoadError as exc:
            return str(exc)
        except Exception as exc:  # any decoder failure is this image's problem only
            return f"cannot decode image: {type(exc).__name__}: {exc}"

    def score_one(self, source: Scorable, name: str | None = None) -> ImageResult:
        """Score one image; errors are returned in the ImageResult, never raised."""
        return self.score_batch([source], names=None if name is None else [name])[0]

    @torch.inference_mode()
    def score_batch(self, items: Sequence[Scorable], *, names: Sequence[str] | None = None) -> list[ImageResult]:
        """Score several images in one pass: the crops of all of them go through the backbone
        together, ``self.chunk`` at a time (scores equal those of one-by-one scoring).

        Errors are returned in each image's ImageResult, never raised. ``seconds`` is the
        image's own decoding time plus its share (by crops) of the batch's forward time.
        """
        preds, ready = [], []  # ready: (prediction, prepared input) of the decodable ones
        for i, item in enumerate(items):
            t0 = time.perf_counter()
            pred = ImageResult(source=names[i] if names is not None else name_of(item))
            got = self.try_prepare(item)
            if isinstance(got, str):
                pred.error = got
            else:
                ready.append((pred, got))
            pred.seconds = time.perf_counter() - t0
            preds.append(pred)
        if not ready:
            return preds
        t0 = time.perf_counter()
        with self._lock:
            outs = self._forward_many([p.tensor.to(self.device) for _, p in ready], chunk=self.chunk)
        layouts = [self.model.layout(p.tensor.shape[1], p.tensor.shape[2]) for _, p in ready]
        per_crop = (time.perf_counter() - t0) / sum(len(lay.boxes) for lay in layouts)
        for (pred, prepared), out, layout in zip(ready, outs, layouts):
            _fill(pred, prepared, out, layout)
            pred.seconds += per_crop * len(layout.boxes)
        return preds

    def score(
        self,
        items: Sequence[ImageSource],
        *,
        names: Sequence[str] | None = None,
        on_progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
        max_images: int | None = None,
    ) -> list[ImageResult]:
        """Score many images in order, their crops batched across images (see
        ``spai.batching``); progress after each; stops early if should_stop()."""
        return score_many(
            self, items, names=names, max_images=max_images, on_progress=on_progress, should_stop=should_stop
        )


def _fill(pred: ImageResult, prepared: PreparedImage, out: Any, layout: Any) -> None:
    """Copy one image's model output (a PatchOutput) and crop layout into its ImageResult."""
    pred.width, pred.height = prepared.size
    pred.input_height, pred.input_width = int(prepared.tensor.shape[1]), int(prepared.tensor.shape[2])
    pred.logit = float(out.logit)
    pred.score = float(torch.sigmoid(out.logit.float()))
    pred.grid_rows, pred.grid_cols, pred.five_crop = layout.rows, layout.cols, layout.five_crop
    pred.boxes = [tuple(b) for b in layout.boxes]
    pred.attention = out.attention.float().cpu().tolist()
    pred.attention_mean = out.attention.float().mean(0).cpu().tolist()
    pred.similarity = out.similarity.float().reshape(out.similarity.shape[0], -1).cpu().tolist()


def _available_memory() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 4e9
