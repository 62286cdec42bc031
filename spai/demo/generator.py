"""A small convolutional autoencoder whose reconstructions are the demo set's fake images.

The decoder upsamples with learned transposed convolutions, so every reconstruction carries
the decoder's spectral fingerprint, as the autoencoder of a latent diffusion model does
(Rajan et al., ICLR 2025: reconstructions of real photos give aligned real/fake pairs).
The network is trained here, on CPU, on random crops of the training-split real photos.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

__all__ = [
    "AutoencoderConfig",
    "ConvAutoencoder",
    "train_autoencoder",
    "reconstruct",
]


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture and training budget of the fake-image generator."""

    width: int = 32  # channels of the first encoder stage; doubled per stride-2 stage
    stages: int = 3  # stride-2 stages: spatial down-sampling factor is 2**stages
    latent_channels: int = 16  # bottleneck channels at 1/(2**stages) resolution
    crop: int = 64  # training crop side (px), multiple of 2**stages
    batch_size: int = 16
    steps: int = 1500  # optimisation steps (~1.5 min on 2 idle cores; far more when shared)
    lr: float = 1e-3
    seed: int = 0


class ConvAutoencoder(nn.Module):
    """Stride-2 conv encoder, ConvTranspose2d decoder; input/output in [0, 1]."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        enc: list[nn.Module] = []
        ch_in = 3
        widths = [cfg.width * 2**i for i in range(cfg.stages)]
        for w in widths:
            enc += [nn.Conv2d(ch_in, w, 4, stride=2, padding=1), nn.GELU()]
            enc += [nn.Conv2d(w, w, 3, padding=1), nn.GELU()]
            ch_in = w
        enc.append(nn.Conv2d(ch_in, cfg.latent_channels, 1))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, widths[-1], 3, padding=1), nn.GELU()]
        for w_in, w_out in zip(reversed(widths), list(reversed(widths))[1:] + [cfg.width // 2]):
            dec += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), nn.GELU()]
        dec.append(nn.Conv2d(cfg.width // 2, 3, 3, padding=1))
        self.decoder = nn.Sequential(*dec)
        self.factor = 2**cfg.stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x 3 x H x W in [0,1], H and W multiples of `factor` -> same shape."""
        assert x.shape[-1] % self.factor == 0 and x.shape[-2] % self.factor == 0, (
            f"input sides {tuple(x.shape[-2:])} must be multiples of {self.factor}"
        )
        return torch.sigmoid(self.decoder(self.encoder(x)))


def _to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0  # H x W x 3
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()  # 3 x H x W


def _random_crops(photos: Sequence[torch.Tensor], n: int, side: int, rng: np.random.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        p = photos[int(rng.integers(len(photos)))]
        top = int(rng.integers(p.shape[1] - side + 1))
        left = int(rng.integers(p.shape[2] - side + 1))
        crop = p[:, top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out)  # n x 3 x side x side


def train_autoencoder(
    photos: Sequence[Image.Image],
    cfg: AutoencoderConfig,
    on_progress: Callable[[int, float], None] | None = None,
) -> tuple[ConvAutoencoder, dict[str, float]]:
    """Train the autoencoder on random crops of `photos` (seeded); returns model and stats.

    Stats: final L1 loss (mean of the last 50 steps) and wall-clock seconds.
    """
    if not photos:
        raise ValueError("train_autoencoder needs at least one photo")
    small = [p.size for p in photos if min(p.size) < cfg.crop]
    if small:
        raise ValueError(f"photos smaller than the {cfg.crop}px training crop: {small}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tensors = [_to_tensor(p) for p in photos]
    model = ConvAutoencoder(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)
    losses: list[float] = []
    start = time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        x = _random_crops(tensors, cfg.batch_size, cfg.crop, rng)
        loss = (model(x) - x).abs().mean()  # L1 reconstruction
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if on_progress is not None:
            on_progress(step + 1, losses[-1])
    model.eval()
    stats = {"final_l1": float(np.mean(losses[-50:])), "seconds": time.perf_counter() - start}
    return model, stats


@torch.no_grad()
def reconstruct(model: ConvAutoencoder, img: Image.Image) -> Image.Image:
    """Reconstruct an RGB image whose sides are multiples of `model.factor`; returns RGB uint8."""
    x = _to_tensor(img).unsqueeze(0)  # 1 x 3 x H x W
    y = model(x)[0].permute(1, 2, 0).numpy()  # H x W x 3
    return Image.fromarray(np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8), "RGB")
