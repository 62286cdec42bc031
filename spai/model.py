"""The SPAI network: spectral views, frequency-restoration features, patch attention, head.

Reads top to bottom as the forward pass does (see the spec, section 3):

    crops (L x 3 x 224 x 224, [0,1])
      -> MFViT: low/high-pass split, shared ViT on the three views, per-layer projectors,
         cosine-similarity statistics + original-image branch   -> L x P patch vectors
      -> spectral context attention over the L patches (learned query per head) -> 1 x P
      -> LayerNorm -> MLP head -> 1 logit

Parameter names equal those of the official checkpoint, so it loads without a renaming table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torchvision.transforms.functional as TF
from torch import nn

from spai.config import Config, ModelConfig
from spai.spectral import frequency_mask, split_low_high
from spai.vit import VisionTransformer

__all__ = ["SPAI", "build_model", "crop_layout", "extract_crops", "CropLayout", "PatchOutput"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COS_EPS = 1e-8


# ----------------------------------------------------------------------------- crops


@dataclass(frozen=True)
class CropLayout:
    """Where the crops of one image come from (image coordinates after padding)."""

    rows: int  # grid rows (also reported under five-crop)
    cols: int
    five_crop: bool
    boxes: tuple[tuple[int, int, int, int], ...]  # (left, top, right, bottom) per crop, in order
    size: int  # crop side
    stride: int  # grid step


def crop_layout(height: int, width: int, size: int, stride: int, minimum: int) -> CropLayout:
    """Grid of size x size crops at `stride`, or the five-crop fallback when too few cells."""
    rows = (height - size) // stride + 1
    cols = (width - size) // stride + 1
    if rows * cols >= minimum:
        boxes = tuple(
            (c * stride, r * stride, c * stride + size, r * stride + size) for r in range(rows) for c in range(cols)
        )
        return CropLayout(rows, cols, False, boxes, size, stride)
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    boxes = (
        (0, 0, size, size),
        (width - size, 0, width, size),
        (0, height - size, size, height),
        (width - size, height - size, width, height),
        (left, top, left + size, top + size),
    )
    return CropLayout(rows, cols, True, boxes, size, stride)


def extract_crops(image: torch.Tensor, layout: CropLayout) -> torch.Tensor:
    """image: 3 x H x W -> L x 3 x size x size, in the layout's order."""
    size, stride = layout.size, layout.stride
    if layout.five_crop:
        return torch.stack(list(TF.five_crop(image, [size, size])))
    patches = image.unfold(1, size, stride).unfold(2, size, stride)  # 3 x R x C x S x S
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, image.shape[0], size, size)


# ----------------------------------------------------------------------------- blocks


class Projector(nn.Module):
    """[LayerNorm] -> (Dropout -> Linear -> act) x n -> Dropout -> LayerNorm.

    The Linear layers sit at indices 1, 4, ... of ``projector`` as in the official weights.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        layers: int,
        dropout: float,
        last_act: str | None,
        input_norm: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(in_dim) if input_norm else None
        mods: list[nn.Module] = []
        dim = in_dim
        for i in range(layers):
            last = i == layers - 1
            mods += [nn.Dropout(dropout), nn.Linear(dim, out_dim)]
            mods.append(_activation(last_act) if last else nn.GELU())
            dim = out_dim
        mods.append(nn.Dropout(dropout))
        self.projector = nn.Sequential(*mods)
        self.norm2 = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm1 is not None:
            x = self.norm1(x)
        return self.norm2(self.projector(x))


def _activation(name: str | None) -> nn.Module:
    if name is None or str(name).lower() in ("none", "identity"):
        return nn.Identity()
    if str(name).lower() == "gelu":
        return nn.GELU()
    if str(name).lower() == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {name!r}; expected None, 'gelu' or 'relu'")


class PatchProjector(nn.Module):
    """One Projector per selected ViT layer (shared by the three views)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        v = cfg.vit
        self.projectors = nn.ModuleList(
            [
                Projector(
                    v.embed_dim,
                    v.projection_dim,
                    v.projection_layers,
                    cfg.sid_dropout,
                    cfg.fre.projector_last_layer_activation_type,
                    input_norm=True,
                )
                for _ in v.intermediate_layers
            ]
        )


class OriginalFeaturesProcessor(nn.Module):
    """Original-image branch: token mean/std per layer -> proj1 -> softmax(alpha) over layers -> proj2."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        v = cfg.vit
        p = v.projection_dim
        n = len(v.intermediate_layers)
        self.alpha = nn.Parameter(torch.randn(1, n, p))
        self.proj1 = Projector(2 * p, p, v.projection_layers, cfg.sid_dropout, "gelu", False)
        self.proj2 = Projector(p, p, v.projection_layers, cfg.sid_dropout, "gelu", False)

    def forward(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """mean, std: B x N x P (token statistics of the projected original view) -> B x P."""
        x = self.proj1(torch.cat([mean, std], dim=-1))  # B x N x P
        weights = torch.softmax(self.alpha, dim=1)  # 1 x N x P
        return self.proj2((x * weights).sum(dim=1))  # B x P


class FrequencyRestorationEstimator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.patch_projector = PatchProjector(cfg)
        self.use_similarity = not cfg.fre.disable_reconstruction_similarity
        self.original_features_processor = (
            OriginalFeaturesProcessor(cfg) if cfg.fre.original_image_features_branch else None
        )


class ClassificationHead(nn.Module):
    def __init__(self, dim: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        hidden = dim * mlp_ratio
        self.head = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


# ----------------------------------------------------------------------------- MFViT


class MFViT(nn.Module):
    """Per-crop feature extractor: three spectral views through one ViT -> P-dim patch vectors."""

    def __init__(self, cfg: ModelConfig, img_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.frequencies_mask = nn.Parameter(frequency_mask(img_size, cfg.fre.masking_radius), requires_grad=False)
        self.vit = VisionTransformer(cfg.vit, img_size, cfg.drop_path_rate)
        self.features_processor = FrequencyRestorationEstimator(cfg)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.frozen_backbone = True

    @property
    def num_layers(self) -> int:
        return len(self.cfg.vit.intermediate_layers)

    @property
    def out_dim(self) -> int:
        dim = 0
        if self.features_processor.use_similarity:
            dim += 6 * self.num_layers
        if self.features_processor.original_features_processor is not None:
            dim += self.cfg.vit.projection_dim
        return dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x 3 x 224 x 224 in [0,1] -> B x P patch vectors (P = 6N + projection_dim)."""
        return self.forward_with_stats(x)[0]

    def forward_with_stats(
        self, x: torch.Tensor, views: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch vectors and the B x 6 x N similarity statistics (zeros if disabled).

        `views` = precomputed (low, high) views, else they are computed here by FFT.
        The three views go through the backbone as one 3B batch; each selected layer is
        projected and reduced as soon as it is produced, so only B x N statistics are kept.
        """
        B = x.shape[0]
        low, high = views if views is not None else split_low_high(x, self.frequencies_mask)
        stacked = torch.cat([x, low, high], dim=0)  # 3B x 3 x S x S
        stacked = (stacked - self.mean) / self.std
        fp = self.features_processor
        n = self.num_layers
        sims = x.new_zeros(B, 6, n)  # rows: mean/std of (o,l), (o,h), (l,h)
        o_mean = o_std = None
        if fp.original_features_processor is not None:
            o_mean = x.new_zeros(B, n, self.cfg.vit.projection_dim)
            o_std = torch.zeros_like(o_mean)
        if self.frozen_backbone and torch.is_grad_enabled():
            with torch.no_grad():  # backbone frozen: keep its outputs, train what follows
                layers = [(i, f.detach()) for i, f in self.vit.iter_layers(stacked)]
        else:
            layers = self.vit.iter_layers(stacked)  # streamed: one layer in memory at a time
        for i, feats in layers:  # feats: 3B x T x D
            proj = fp.patch_projector.projectors[i](feats)  # 3B x T x P
            o, lo, hi = proj[:B], proj[B : 2 * B], proj[2 * B :]
            if fp.use_similarity:
                on, ln, hn = (_unit(v) for v in (o, lo, hi))  # each view normalised once
                for j, (a, b) in enumerate(((on, ln), (on, hn), (ln, hn))):
                    cos = (a * b).sum(dim=-1)  # B x T, = F.cosine_similarity(.., eps=COS_EPS)
                    sims[:, 2 * j, i] = cos.mean(dim=1)
                    sims[:, 2 * j + 1, i] = cos.std(dim=1)  # unbiased (n - 1)
            if o_mean is not None:
                o_mean[:, i] = o.mean(dim=1)
                o_std[:, i] = o.std(dim=1)
        parts = []
        if fp.use_similarity:
            parts.append(sims.reshape(B, 6 * n))  # [m(o,l) x N, s(o,l) x N, m(o,h) ...]
        if o_mean is not None:
            parts.append(fp.original_features_processor(o_mean, o_std))
        return torch.cat(parts, dim=1), sims


def _unit(x: torch.Tensor) -> torch.Tensor:
    """x / max(||x||, COS_EPS) along the last dim: F.cosine_similarity's own normalisation,
    done once per view instead of once per pair (the same operations, the same values)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(COS_EPS)


# ----------------------------------------------------------------------------- SPAI


@dataclass
class PatchOutput:
    """Result for one image: logit, attention over its crops and the per-crop statistics."""

    logit: torch.Tensor  # scalar
    attention: torch.Tensor  # heads x L
    features: torch.Tensor  # L x P
    similarity: torch.Tensor  # L x 6 x N
    pooled: torch.Tensor  # P, attention output before the final LayerNorm


class SPAI(nn.Module):
    """Any-resolution SPAI (official name: PatchBasedMFViT)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        self.img_size = cfg.data.img_size
        self.mfvit = MFViT(m, self.img_size)
        dim = self.mfvit.out_dim
        heads = m.patch_vit.num_heads
        attn_dim = m.patch_vit.attn_embed_dim
        assert attn_dim % heads == 0, "ATTN_EMBED_DIM must be divisible by PATCH_VIT.NUM_HEADS"
        self.heads = heads
        self.head_dim = attn_dim // heads
        self.patch_aggregator = nn.Parameter(torch.zeros(heads, 1, self.head_dim))
        self.to_kv = nn.Linear(dim, attn_dim * 2, bias=False)
        self.to_out = nn.Sequential(nn.Linear(attn_dim, dim, bias=False))
        self.norm = nn.LayerNorm(dim)
        self.cls_head = ClassificationHead(dim, m.cls_head.mlp_ratio, m.sid_dropout)
        nn.init.trunc_normal_(self.patch_aggregator, std=0.02)

    # -- pieces ---------------------------------------------------------------

    def get_vision_transformer(self) -> VisionTransformer:
        return self.mfvit.vit

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Frozen: backbone features computed without gradients (official default)."""
        self.mfvit.frozen_backbone = frozen
        for p in self.mfvit.vit.parameters():
            p.requires_grad = not frozen

    def patch_features(self, crops: torch.Tensor) -> torch.Tensor:
        """crops: L x 3 x 224 x 224 -> L x P."""
        return self.mfvit(crops)

    def aggregate(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Spectral context attention over each image's patches.

        feats: B x L x P -> (logits B, attention B x heads x L, pooled B x P before the norm).
        """
        B, L, _ = feats.shape
        k, v = self.to_kv(feats).chunk(2, dim=-1)  # each B x L x A
        k = k.reshape(B, L, self.heads, self.head_dim).transpose(1, 2)  # B x H x L x hd
        v = v.reshape(B, L, self.heads, self.head_dim).transpose(1, 2)
        q = self.patch_aggregator.unsqueeze(0)  # 1 x H x 1 x hd
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.head_dim**-0.5, dim=-1)  # B x H x 1 x L
        pooled = self.to_out((attn @ v).transpose(1, 2).reshape(B, -1))  # B x P
        logits = self.cls_head(self.norm(pooled)).squeeze(-1)  # B
        return logits, attn.squeeze(2), pooled

    # -- forward paths ----------------------------------------------------------

    def layout(self, height: int, width: int) -> CropLayout:
        pv = self.cfg.model.patch_vit
        return crop_layout(height, width, self.img_size, pv.patch_stride, pv.minimum_patches)

    def forward_image(self, image: torch.Tensor, chunk: int | None = None) -> PatchOutput:
        """One image, any size >= 224: 3 x H x W in [0,1] -> PatchOutput.

        Crops go through the backbone `chunk` at a time (memory bound; results identical).
        """
        return self.forward_images([image], chunk)[0]

    def forward_images(self, images: Sequence[torch.Tensor], chunk: int | None = None) -> list[PatchOutput]:
        """Several images of any sizes >= 224 -> one PatchOutput each, as ``forward_image``.

        The crops of all images go through the backbone together, ``chunk`` at a time (a
        chunk may hold crops of several images); the attention over each image's crops is
        then taken image by image. Per-crop features do not depend on their batch-mates.
        """
        layouts = [self.layout(img.shape[1], img.shape[2]) for img in images]
        crops = torch.cat([extract_crops(img, lay) for img, lay in zip(images, layouts)])
        chunk = chunk or self.cfg.model.feature_extraction_batch
        feats, sims = [], []
        for start in range(0, crops.shape[0], chunk):
            f, s = self.mfvit.forward_with_stats(crops[start : start + chunk])
            feats.append(f)
            sims.append(s)
        features, similarity = torch.cat(feats), torch.cat(sims)  # (sum L) x P, (sum L) x 6 x N
        out, start = [], 0
        for lay in layouts:
            n = len(lay.boxes)
            f = features[start : start + n]
            logits, attn, pooled = self.aggregate(f.unsqueeze(0))
            out.append(PatchOutput(logits[0], attn[0], f, similarity[start : start + n], pooled[0]))
            start += n
        return out

    def forward_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Tensor path (training): B x 3 x H x W, H and W multiples of 224 -> B logits.

        The grid is taken with unfold (no five-crop) and the crops go through MFViT one
        grid position at a time, as in the official training path.
        """
        S = self.img_size
        stride = self.cfg.model.patch_vit.patch_stride
        B = x.shape[0]
        patches = x.unfold(2, S, stride).unfold(3, S, stride)  # B x 3 x R x C x S x S
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(B, -1, 3, S, S)  # B x L x 3 x S x S
        feats = torch.stack([self.mfvit(patches[:, i]) for i in range(patches.shape[1])], dim=1)
        return self.aggregate(feats)[0]

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """A B x 3 x H x W batch (tensor path) or a list of 3 x H x W images -> B logits."""
        if isinstance(x, torch.Tensor):
            return self.forward_batch(x)
        return torch.stack([self.forward_image(img).logit for img in x])


def build_model(cfg: Config) -> SPAI:
    """Build SPAI from a Config (weights randomly initialised)."""
    m = cfg.model
    if m.sid_approach != "freq_restoration" or m.resolution_mode != "arbitrary":
        raise ValueError(
            "only MODEL.SID_APPROACH=freq_restoration with MODEL.RESOLUTION_MODE=arbitrary is "
            f"supported (got {m.sid_approach!r}, {m.resolution_mode!r})"
        )
    return SPAI(cfg)
