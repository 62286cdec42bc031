"""ViT backbone of SPAI with intermediate-layer outputs, parameter names as in the official weights.

The official backbone is its own ViT class (BEiT-style attention with separate q and v biases and
a fixed zero k bias). It keeps tensors that the SPAI path never uses (``head``, ``fc_norm``,
``intermediate_fc_norm``, ``cls_pos_embed``, ``actual_cls_token``, ``cls_blocks``); they are
created here too so the official checkpoint loads strictly.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn

from spai.config import VitConfig

__all__ = ["Attention", "Block", "VisionTransformer"]

VIT_LN_EPS = 1e-6  # every LayerNorm inside the backbone


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # B x T x D


class Attention(nn.Module):
    """Multi-head self-attention; qkv bias = [q_bias, 0, v_bias]; fused SDPA kernel."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias)  # B x T x 3D
        qkv = qkv.reshape(B, T, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each B x H x T x hd
        out = F.scaled_dot_product_attention(q, k, v)  # scale hd^-0.5
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """Pre-norm transformer block: x += attn(LN(x)); x += mlp(LN(x))."""

    def __init__(self, cfg: VitConfig, drop_path: float = 0.0) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=VIT_LN_EPS)
        self.attn = Attention(dim, cfg.num_heads, cfg.qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=VIT_LN_EPS)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), act_layer=nn.GELU)
        if cfg.init_values is not None:
            self.gamma_1 = nn.Parameter(cfg.init_values * torch.ones(dim))
            self.gamma_2 = nn.Parameter(cfg.init_values * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gamma_1 is None:
            x = x + self.drop_path(self.attn(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT-B/16-style backbone returning the raw outputs of selected blocks."""

    def __init__(self, cfg: VitConfig, img_size: int = 224, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.embed_dim
        num_tokens = (img_size // cfg.patch_size) ** 2
        self.layers = tuple(cfg.intermediate_layers)
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, dim)) if cfg.use_ape else None
        rates = torch.linspace(0, drop_path_rate, cfg.depth).tolist()
        self.blocks = nn.ModuleList([Block(cfg, rates[i]) for i in range(cfg.depth)])
        # Present in the official weights, unused on SPAI's path.
        self.cls_pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, dim))
        self.actual_cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_blocks = nn.ModuleList([Block(cfg)])
        self.intermediate_fc_norm = nn.ModuleList([nn.LayerNorm(dim, eps=VIT_LN_EPS) for _ in self.layers])
        self.fc_norm = nn.LayerNorm(dim, eps=VIT_LN_EPS)
        self.head = nn.Linear(dim * len(self.layers), 2)
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.cls_token, self.cls_pos_embed, self.actual_cls_token, self.pos_embed):
            if p is not None:
                trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def last_layer(self) -> int:
        return max(self.layers)

    def iter_layers(self, x: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (position in INTERMEDIATE_LAYERS, block output without cls) per selected block.

        x: B x 3 x 224 x 224 (normalised). Yields B x T x D tensors (T = 196).
        Blocks after the last selected one are skipped.
        """
        tokens = self.patch_embed(x)  # B x T x D
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1)  # B x (T+1) x D
        if self.pos_embed is not None:
            h = h + self.pos_embed
        wanted = {layer: i for i, layer in enumerate(self.layers)}
        for idx in range(self.last_layer + 1):
            h = self.blocks[idx](h)
            if idx in wanted:
                yield wanted[idx], h[:, 1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x 224 x 224 -> B x N x T x D, raw block outputs of the selected layers."""
        outs: list[torch.Tensor] = [None] * len(self.layers)  # type: ignore[list-item]
        for i, feat in self.iter_layers(x):
            outs[i] = feat
        return torch.stack(outs, dim=1)
