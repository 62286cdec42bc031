"""A study's figures with matplotlib (Agg, no display): each saved as PNG, SVG and PDF.

- ``heatmap``: metric per fake set (and mean) x condition, one per model and metric.
- ``roc``: one ROC curve per condition (pooled fake sets vs pooled selected real sets), per model.
- ``scores``: score histograms of real and fake images, one panel per condition, per model.

Files carry no creation date, so the same study gives the same SVG and PDF bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from robustness.metrics import auc, get_metric, roc_curve_points  # noqa: E402
from robustness.study.results import MEAN_ROW, StudyResults  # noqa: E402

__all__ = ["FIGURE_FORMATS", "Figure", "write_figures"]

FIGURE_FORMATS = ("png", "svg", "pdf")
PNG_DPI = 150
HIST_BINS = 40
STYLE = {
    "svg.hashsalt": "spai-study",
    "pdf.fonttype": 42,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, e.g. "heatmap_auc_demo"
    title: str
    paths: dict[str, Path]  # format -> file


def _slug(text: str) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in text.lower()).split()
    return "-".join(words) or "x"


def _save(fig, out: Path, stem: str, title: str) -> Figure:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt in FIGURE_FORMATS:
        path = out / f"{stem}.{fmt}"
        meta = {"Date": None} if fmt in ("svg", "pdf") else {}
        if fmt == "pdf":
            meta["CreationDate"] = meta.pop("Date")
        fig.savefig(path, format=fmt, dpi=PNG_DPI, bbox_inches="tight", metadata=meta)
        paths[fmt] = path
    plt.close(fig)
    return Figure(stem, title, paths)


def _heatmap(results: StudyResults, model: str, metric: str, out: Path) -> Figure:
    study = results.study
    t = results.tables[(model, metric)].values
    spec = get_metric(metric)
    data = t.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * data.shape[1], 0.8 + 0.32 * data.shape[0]))
    cmap = "RdYlGn" if spec.higher_is_better else "RdYlGn_r"
    norm = TwoSlopeNorm(vmin=0.0, vcenter=0.5, vmax=1.0) if metric == "auc" else None
    im = ax.imshow(data, cmap=cmap, norm=norm, vmin=None if norm else 0.0, vmax=None if norm else 1.0, aspect="auto")
    ax.set_xticks(range(data.shape[1]), [study.label(c) for c in t.columns], rotation=30, ha="right")
    ax.set_yticks(range(data.shape[0]), [("Mean" if r == MEAN_ROW else r) for r in t.index])
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if not math.isnan(data[i, j]):
                ax.text(
                    j,
                    i,
                    f"{data[i, j]:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    fontweight="bold" if t.index[i] == MEAN_ROW else "normal",
                )
    ax.axhline(data.shape[0] - 1.5, color="black", linewidth=0.8)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label=metric.upper())
    title = f"{metric.upper()} of {model} (vs {', '.join(results.real_sets)})"
    ax.set_title(title)
    return _save(fig, out, f"heatmap_{_slug(metric)}_{_slug(model)}", title)


def _pooled(results: StudyResults, model: str, condition: str) -> tuple[np.ndarray, np.ndarray]:
    ms = results.scores[model]
    fakes = np.concatenate([ms.groups[(condition, f)].scores for f in results.fake_sets])
    reals = np.concatenate([ms.groups[(condition, r)].scores for r in results.real_sets])
    return fakes, reals


def _roc(results: StudyResults, model: str, out: Path) -> Figure:
    study = results.study
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    for c in study.condition_ids:
        fakes, reals = _pooled(results, model, c)
        y = np.r_[np.ones(fakes.size, np.int8), np.zeros(reals.size, np.int8)]
        fpr, tpr, _ = roc_curve_points(y, np.r_[fakes, reals])
        ax.plot(fpr, tpr, linewidth=1.2, label=f"{study.label(c)} (pooled AUC {auc(y, np.r_[fakes, reals]):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.6, linestyle=":")
    ax.set(
        xlabel="false positive rate (real called fake)",
        ylabel="true positive rate",
        xlim=(0, 1),
        ylim=(0, 1.01),
        aspect="equal",
    )
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    title = f"ROC per condition: {model}"
    ax.set_title(title)
    return _save(fig, out, f"roc_{_slug(model)}", title)


def _scores(results: StudyResults, model: str, out: Path) -> Figure:
    study = results.study
    conds = study.condition_ids
    cols = min(3, len(conds))
    rows = math.ceil(len(conds) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.2 * rows), squeeze=False, sharex=True)
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    for k, c in enumerate(conds):
        ax = axes[k // cols][k % cols]
        fakes, reals = _pooled(results, model, c)
        for arr, kind, color in ((reals, "real", "tab:blue"), (fakes, "fake", "tab:red")):
            share = np.histogram(np.clip(arr, 0, 1), bins=edges)[0] / max(arr.size, 1)
            ax.stairs(share, edges, fill=True, alpha=0.55, color=color, label=f"{kind} (n={arr.size})")
        ax.set_title(study.label(c), fontsize=9)
        ax.legend(fontsize=6, frameon=False)
    for k in range(len(conds), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("score (P fake)")
    for row in axes:
        row[0].set_ylabel("share of images")
    title = f"Score distributions: {model}"
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out, f"scores_{_slug(model)}", title)


def write_figures(results: StudyResults, out: Path) -> list[Figure]:
    """Every figure of the study into ``out`` (PNG, SVG, PDF each)."""
    figs = []
    with plt.rc_context(STYLE):
        for model in results.scores:
            for metric in results.study.metrics:
                figs.append(_heatmap(results, model, metric, out))
            figs.append(_roc(results, model, out))
            figs.append(_scores(results, model, out))
    return figs
