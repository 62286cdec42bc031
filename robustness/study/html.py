"""A study's self-contained HTML report: one file that opens offline.

Tables, figures (SVG embedded as data: URIs), the study file as written, the models with their
hashes, the package versions and the seeds. Nothing is fetched: no scripts, no style sheets,
no fonts and no images from elsewhere.
"""

from __future__ import annotations

import base64
import html
import platform
import subprocess
from dataclasses import dataclass
from datetime import datetime, UTC
from importlib import metadata
from pathlib import Path

import pandas as pd

from robustness.study.figures import Figure
from robustness.study.results import MEAN_ROW, StudyResults, Table
from robustness.study.tables import DIGITS, best_rows, summary_table

__all__ = ["ModelInfo", "PACKAGES", "package_versions", "render_html"]

PACKAGES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "torch",
    "timm",
    "pillow",
    "matplotlib",
    "SQLAlchemy",
    "PyYAML",
    "pilgram2",
)
CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{padding:.25em .6em;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left}thead th{border-bottom:2px solid #444}
tr.mean td{border-top:2px solid #444;font-weight:600}.ci{color:#666;font-size:.85em}
caption{text-align:left;font-size:.9em;color:#444;margin-bottom:.3em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
"""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str  # weights file or score folder/files
    sha256: str | None  # of the weights file; of the score files for imported models
    kind: str  # "weights" | "imported scores"


def package_versions() -> dict[str, str]:
    """Python and the main packages (read from their metadata; nothing is imported)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(repo: Path) -> str | None:
    """The checkout's commit (with "+changes" when the tree is dirty), or None."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return head + (" +changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table_html(results: StudyResults, t: Table, summary: bool, caption: str) -> str:
    study = results.study
    rows = list(t.values.index)
    best = best_rows(t.values, t.metric, rows if summary else [r for r in rows if r != MEAN_ROW])
    head = "".join(f"<th>{_esc(study.label(c))}</th>" for c in t.values.columns)
    body = []
    for r in rows:
        cells = []
        for c in t.values.columns:
            v = t.values.loc[r, c]
            text = "–" if pd.isna(v) else f"{v:.{DIGITS}f}"
            if r in best.get(c, set()):
                text = f"<b>{text}</b>"
            if t.low is not None and not pd.isna(t.low.loc[r, c]):
                text += f' <span class="ci">[{t.low.loc[r, c]:.{DIGITS}f}, {t.high.loc[r, c]:.{DIGITS}f}]</span>'
            cells.append(f"<td>{text}</td>")
        is_mean = r == MEAN_ROW and not summary
        name = "Mean" if is_mean else _esc(r)
        body.append(f"<tr{' class=mean' if is_mean else ''}><td>{name}</td>{''.join(cells)}</tr>")
    first = "model" if summary else "fake set"
    return (
        f"<table><caption>{_esc(caption)}</caption><thead><tr><th>{first}</th>{head}</tr>"
        f"</thead><tbody>{''.join(body)}</tbody></table>"
    )


def _figure_html(fig: Figure) -> str:
    data = base64.b64encode(fig.paths["svg"].read_bytes()).decode("ascii")
    files = ", ".join(p.name for p in fig.paths.values())
    return (
        f'<figure><img alt="{_esc(fig.title)}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{_esc(fig.title)} ({_esc(files)})</figcaption></figure>"
    )


def _delta_html(study, table) -> str:
    d0 = table.rows[0]
    cap = (
        f"{table.title} ({d0.n} replicates, {d0.level:.0%} interval, the same images "
        f"resampled for both sides; {d0.images} paired images)"
    )
    rows = [
        (
            study.label(d.label),
            f"{d.a:.{DIGITS}f}",
            f"{d.b:.{DIGITS}f}",
            f"{d.delta:+.{DIGITS}f}",
            f"[{d.low:+.{DIGITS}f}, {d.high:+.{DIGITS}f}]",
        )
        for d in table.rows
    ]
    return _kv_table(rows, ("", table.side_a, table.side_b, "Δ", "interval"), caption=cap)


def _kv_table(rows: list[tuple[str, ...]], head: tuple[str, ...], caption: str = "") -> str:
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    results: StudyResults,
    figures: list[Figure],
    models: list[ModelInfo],
    seeds: dict[str, tuple[int, str | None]],
    *,
    deltas: list | None = None,
    commit: str | None = None,
) -> str:
    """The whole report as one HTML document."""
    study = results.study
    parts = [f"<h1>Study {_esc(study.name)}</h1>"]
    if study.description:
        parts.append(f"<p>{_esc(study.description)}</p>")
    parts.append(
        f"<p>Real sets averaged over: {_esc(', '.join(results.real_sets))}. "
        f"Fake sets: {_esc(', '.join(results.fake_sets))}. Baseline condition: "
        f"{_esc(study.label(study.baseline))}. Protocol: each fake set against each "
        f"real set (fake = positive), averaged over the real sets; the mean row "
        f"averages the fake sets.</p>"
    )
    parts.append("<h2>Tables</h2>")
    for metric in study.metrics:
        if len(results.scores) > 1:
            parts.append(
                _table_html(
                    results,
                    summary_table(results, metric),
                    True,
                    f"Mean {metric.upper()} per condition and model; bold: best model per condition",
                )
            )
        for (model, met), t in results.tables.items():
            if met == metric:
                parts.append(
                    _table_html(
                        results,
                        t,
                        False,
                        f"{metric.upper()} of {model} per fake set; bold: best fake set per condition",
                    )
                )
    if deltas:
        parts.append("<h2>Deltas (paired bootstrap)</h2>")
        parts += [_delta_html(study, d) for d in deltas]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [_figure_html(f) for f in figures]
    parts.append("<h2>Models</h2>")
    parts.append(
        _kv_table([(m.name, m.kind, m.source, m.sha256 or "–") for m in models], ("model", "kind", "source", "sha256"))
    )
    parts.append("<h2>Seeds</h2>")
    boot = study.bootstrap
    boot_text = "none" if boot is None else f"{boot.n} replicates, seed {boot.seed}, level {boot.level:.0%}"
    parts.append(
        f"<p>Bootstrap: {boot_text}. Condition variants are seeded per image from "
        f"sha256(condition id, image key) (<code>robustness.registry.seed_for</code>); "
        f"the seed of every derived image is stored with it. Digest: sha256 over the "
        f"sorted seeds of the study's derived images.</p>"
    )
    parts.append(
        _kv_table(
            [(study.label(c), c, str(n), d or "– (no seeded derived images)") for c, (n, d) in seeds.items()],
            ("condition", "id", "seeded images", "seed digest"),
        )
    )
    parts.append("<h2>Software</h2>")
    versions = package_versions()
    if commit:
        versions = {"project commit": commit, **versions}
    parts.append(_kv_table(list(versions.items()), ("package", "version")))
    parts.append(f"<h2>Study file</h2><p>{_esc(study.path.name)}</p><pre>{_esc(study.text)}</pre>")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p><small>Written {stamp} by python -m robustness.study.</small></p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Study {_esc(study.name)}</title><style>{CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
