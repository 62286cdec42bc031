"""Spectral split of 224x224 crops into the low- and high-pass views that SPAI compares.

All functions are pure tensor functions. The mask geometry follows the official code: along
each axis the coordinate vector is [c-1, ..., 1, 0, 0, 1, ..., c-1] (c = size // 2), so the
disc is centred on the 2x2 block around the spectrum centre, not on the DC bin.
"""

from __future__ import annotations

import torch

__all__ = ["frequency_mask", "split_low_high"]


def frequency_mask(size: int = 224, radius: int = 16) -> torch.Tensor:
    """Low-pass disc as an int64 (size x size) 0/1 tensor: 1 where r < radius."""
    half = size // 2
    axis = torch.cat([torch.arange(half - 1, -1, -1), torch.arange(0, size - half)]).double()
    r = torch.sqrt(axis[:, None] ** 2 + axis[None, :] ** 2)  # size x size
    return (r < radius).to(torch.int64)


def split_low_high(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split images into low- and high-pass views, both clamped to [0, 1].

    Args:
        x: B x C x S x S images in [0, 1].
        mask: S x S 0/1 low-pass mask (int or float).
    Returns:
        (low, high), each B x C x S x S in x's dtype.
    """
    spec = torch.fft.fftshift(torch.fft.fft2(x.float()), dim=(-2, -1))  # B x C x S x S complex
    m = mask.to(device=x.device, dtype=torch.float32)
    low = torch.fft.ifft2(torch.fft.ifftshift(spec * m, dim=(-2, -1))).real
    high = torch.fft.ifft2(torch.fft.ifftshift(spec * (1 - m), dim=(-2, -1))).real
    return low.clamp(0, 1).to(x.dtype), high.clamp(0, 1).to(x.dtype)


def dft_matrices(size: int = 224) -> tuple[torch.Tensor, torch.Tensor]:
    """Real cos and sin DFT matrices (size x size, float64) with W = C - iS."""
    k = torch.arange(size, dtype=torch.float64)
    angle = 2 * torch.pi * torch.outer(k, k) / size
    return torch.cos(angle), torch.sin(angle)


def split_low_high_matmul(
    x: torch.Tensor, unshifted_mask: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same split as `split_low_high`, written as real matrix products (ONNX-exportable).

    With W = C - iS, the low-pass view is Re(W* (M' o (W x W)) W*) / S^2, where M' is the
    mask moved to the unshifted spectrum; the high-pass view is x minus it (the two filters sum
    to the identity). unshifted_mask = ifftshift(mask) as float32; cos and sin from
    `dft_matrices`, float32.
    """
    n = x.shape[-1]
    m = unshifted_mask
    cx, sx = cos @ x, sin @ x  # B x C x S x S
    yr = m * (cx @ cos - sx @ sin)
    yi = -m * (cx @ sin + sx @ cos)
    p = cos @ yr - sin @ yi
    q = cos @ yi + sin @ yr
    low = (p @ cos - q @ sin) / (n * n)
    high = x - low
    return low.clamp(0, 1).to(x.dtype), high.clamp(0, 1).to(x.dtype)
