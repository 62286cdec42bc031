"""ONNX export of SPAI as two graphs, and scoring with onnxruntime.

- patch encoder: B x 3 x 224 x 224 crops in [0,1] -> B x P patch vectors (the spectral split is
  inside, written as real matrix products since ONNX has no FFT op that the exporter maps; with
  ``exclude_preprocessing`` the graph takes the three views x, low, high instead);
- patch aggregator: 1 x L x P -> (1 logit, 1 x heads x L attention).
Cropping and padding stay in Python (`spai.model.crop_layout`), shared with the PyTorch path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from spai.model import SPAI, extract_crops
from spai.spectral import dft_matrices, split_low_high_matmul

__all__ = ["export_onnx", "OnnxModel"]

ENCODER_FILE = "patch_encoder.onnx"
AGGREGATOR_FILE = "patch_aggregator.onnx"
OPSET = 17


class _Encoder(nn.Module):
    def __init__(self, model: SPAI, exclude_preprocessing: bool) -> None:
        super().__init__()
        self.mfvit = model.mfvit
        self.exclude = exclude_preprocessing
        cos, sin = dft_matrices(model.img_size)
        self.register_buffer("cos", cos.float(), False)
        self.register_buffer("sin", sin.float(), False)
        mask = torch.fft.ifftshift(model.mfvit.frequencies_mask.detach().float(), dim=(-2, -1))
        self.register_buffer("mask", mask, False)

    def forward(self, x: torch.Tensor, *views: torch.Tensor) -> torch.Tensor:
        if not self.exclude:
            views = split_low_high_matmul(x, self.mask, self.cos, self.sin)
        return self.mfvit.forward_with_stats(x, tuple(views))[0]  # B x P


class _Aggregator(nn.Module):
    def __init__(self, model: SPAI) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, attn, _ = self.model.aggregate(feats)  # B, B x H x L
        return logits.unsqueeze(-1), attn


def export_onnx(model: SPAI, out_dir: str | Path, *, exclude_preprocessing: bool = False) -> tuple[Path, Path]:
    """Write patch_encoder.onnx and patch_aggregator.onnx into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    S = model.img_size
    enc = _Encoder(model, exclude_preprocessing).eval()
    names = ["crops"] + (["low", "high"] if exclude_preprocessing else [])
    example = tuple(torch.rand(2, 3, S, S) for _ in names)
    enc_path, agg_path = out_dir / ENCODER_FILE, out_dir / AGGREGATOR_FILE
    with torch.no_grad():
        torch.onnx.export(
            enc,
            example,
            str(enc_path),
            input_names=names,
            output_names=["features"],
            dynamic_axes={n: {0: "batch"} for n in names + ["features"]},
            opset_version=OPSET,
            dynamo=False,
        )
        dim = model.mfvit.out_dim
        torch.onnx.export(
            _Aggregator(model).eval(),
            (torch.rand(1, 5, dim),),
            str(agg_path),
            input_names=["features"],
            output_names=["logit", "attention"],
            dynamic_axes={
                "features": {0: "batch", 1: "patches"},
                "logit": {0: "batch"},
                "attention": {0: "batch", 2: "patches"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return enc_path, agg_path


class OnnxModel:
    """Scores model inputs (3 x H x W in [0,1]) with the two exported graphs."""

    def __init__(self, onnx_dir: str | Path, model: SPAI, chunk: int = 16) -> None:
        import onnxruntime as ort

        onnx_dir = Path(onnx_dir)
        opts = ort.SessionOptions()
        self.encoder = ort.InferenceSession(str(onnx_dir / ENCODER_FILE), opts, providers=["CPUExecutionProvider"])
        self.aggregator = ort.InferenceSession(
            str(onnx_dir / AGGREGATOR_FILE), opts, providers=["CPUExecutionProvider"]
        )
        if len(self.encoder.get_inputs()) != 1:
            raise ValueError(
                "this encoder was exported with --exclude-preprocessing; re-export it with the split inside"
            )
        self.model = model  # for crop geometry only
        self.chunk = chunk

    def forward_image(self, image: torch.Tensor) -> tuple[float, np.ndarray]:
        """-> (logit, attention heads x L)."""
        return self.forward_images([image])[0]

    def forward_images(self, images: list[torch.Tensor]) -> list[tuple[float, np.ndarray]]:
        """Several model inputs -> (logit, attention heads x L) each; the crops of all of them
        go through the encoder together, ``chunk`` at a time (as ``SPAI.forward_images``)."""
        counts, crops = [], []
        for image in images:
            layout = self.model.layout(image.shape[1], image.shape[2])
            crops.append(extract_crops(image, layout).numpy())
            counts.append(len(layout.boxes))
        every = np.concatenate(crops)
        feats = np.concatenate(
            [self.encoder.run(None, {"crops": every[i : i + self.chunk]})[0] for i in range(0, len(every), self.chunk)]
        )
        out, start = [], 0
        for n in counts:
            logit, attn = self.aggregator.run(None, {"features": feats[None, start : start + n]})
            out.append((float(logit[0, 0]), attn[0]))
            start += n
        return out
