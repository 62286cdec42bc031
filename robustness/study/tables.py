"""A study's tables as Markdown, LaTeX (booktabs) and CSV.

Per model and metric: rows = fake sets, then a "Mean" row; columns = conditions (their labels).
The best value of each column among the fake-set rows is bold (the direction comes from the
metric: lower is better for the EER). With several models, a summary table puts the models'
mean rows side by side and bolds the best model per condition. With intervals, a cell reads
``0.919 [0.905, 0.931]``.
"""

from __future__ import annotations

import math

import pandas as pd

from robustness.metrics import get_metric
from robustness.study.results import MEAN_ROW, StudyResults, Table

__all__ = ["latex_tables", "long_csv", "markdown_tables", "summary_table"]

DIGITS = 3  # decimals shown in Markdown and LaTeX (CSV keeps full precision)
_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def best_rows(values: pd.DataFrame, metric: str, rows: list[str]) -> dict[str, set[str]]:
    """Column -> the rows holding its best value as shown (ties at the shown precision all
    bold); none when there is one row only."""
    if len(rows) < 2:
        return {}
    higher = get_metric(metric).higher_is_better
    out = {}
    for col in values.columns:
        col_values = values.loc[rows, col].dropna().round(DIGITS)
        if col_values.empty:
            continue
        top = col_values.max() if higher else col_values.min()
        out[col] = {r for r, v in col_values.items() if math.isclose(v, top, abs_tol=1e-9)}
    return out


def _cell(t: Table, row: str, col: str) -> tuple[str, str | None]:
    v = t.values.loc[row, col]
    text = "–" if pd.isna(v) else f"{v:.{DIGITS}f}"
    ci = None
    if t.low is not None and t.high is not None and not pd.isna(t.low.loc[row, col]):
        ci = f"[{t.low.loc[row, col]:.{DIGITS}f}, {t.high.loc[row, col]:.{DIGITS}f}]"
    return text, ci


def summary_table(results: StudyResults, metric: str) -> Table:
    """Models x conditions: each model's mean row (and its interval)."""
    models = list(results.scores)
    vals = pd.DataFrame({m: results.tables[(m, metric)].values.loc[MEAN_ROW] for m in models}).T
    lows = highs = None
    first = results.tables[(models[0], metric)]
    if first.low is not None:
        lows = pd.DataFrame({m: results.tables[(m, metric)].low.loc[MEAN_ROW] for m in models}).T
        highs = pd.DataFrame({m: results.tables[(m, metric)].high.loc[MEAN_ROW] for m in models}).T
    return Table("(all models)", metric, vals, lows, highs)


def _caption(results: StudyResults, t: Table, summary: bool) -> str:
    name = get_metric(t.metric).name.upper()
    reals = ", ".join(results.real_sets)
    ci = (
        f"; brackets: {results.study.bootstrap.level:.0%} bootstrap interval"
        if t.low is not None and results.study.bootstrap
        else "; brackets: 95% bootstrap interval"
        if t.low is not None
        else ""
    )
    if summary:
        return (
            f"Mean {name} per condition and model (fake sets averaged; each against real "
            f"sets {reals}){ci}. Bold: best model per condition."
        )
    return (
        f"{name} of {t.model} per fake set and condition, each the mean against the real "
        f"sets {reals}{ci}. Bold: best fake set per condition."
    )


def _md_one(results: StudyResults, t: Table, summary: bool) -> str:
    study = results.study
    rows = list(t.values.index)
    body_rows = rows if summary else [r for r in rows if r != MEAN_ROW]
    best = best_rows(t.values, t.metric, body_rows)
    head = ["model" if summary else "fake set"] + [study.label(c) for c in t.values.columns]
    lines = [
        f"**{_caption(results, t, summary)}**",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" + "---:|" * (len(head) - 1),
    ]
    for r in rows:
        cells = []
        for c in t.values.columns:
            text, ci = _cell(t, r, c)
            text = f"**{text}**" if r in best.get(c, set()) else text
            cells.append(text + (f" {ci}" if ci else ""))
        label = "**Mean**" if r == MEAN_ROW and not summary else str(r)
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def markdown_tables(results: StudyResults, metric: str) -> str:
    """Every model's table for ``metric`` (and the summary, with several models)."""
    parts = [
        f"### {t.model}\n\n{_md_one(results, t, False)}" for (m, met), t in results.tables.items() if met == metric
    ]
    if len(results.scores) > 1:
        parts.insert(0, f"### Summary\n\n{_md_one(results, summary_table(results, metric), True)}")
    return "\n\n".join(parts) + "\n"


def _tex_one(results: StudyResults, t: Table, summary: bool, label: str) -> str:
    study = results.study
    rows = list(t.values.index)
    body_rows = rows if summary else [r for r in rows if r != MEAN_ROW]
    best = best_rows(t.values, t.metric, body_rows)
    ncol = len(t.values.columns)
    head = ["Model" if summary else "Fake set"] + [tex_escape(study.label(c)) for c in t.values.columns]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(_caption(results, t, summary))}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{l{'r' * ncol}}}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
    ]
    for r in rows:
        if r == MEAN_ROW and not summary:
            lines.append(r"\midrule")
        cells = []
        for c in t.values.columns:
            text, ci = _cell(t, r, c)
            text = rf"\textbf{{{text}}}" if r in best.get(c, set()) else text
            text = "--" if text == "–" else text
            cells.append(text + (rf" {{\scriptsize {ci}}}" if ci else ""))
        name = "Mean" if r == MEAN_ROW and not summary else tex_escape(r)
        lines.append(" & ".join([name] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _tex_label(*parts: str) -> str:
    return "tab:" + "-".join("".join(ch if ch.isalnum() else "-" for ch in p).strip("-").lower() for p in parts)


def latex_tables(results: StudyResults, metric: str) -> str:
    """The tables for ``metric`` as LaTeX table environments (needs ``\\usepackage{booktabs}``)."""
    name = results.study.name
    parts = [f"% {name}: {metric.upper()} tables; needs \\usepackage{{booktabs}}"]
    if len(results.scores) > 1:
        parts.append(_tex_one(results, summary_table(results, metric), True, _tex_label(name, metric, "summary")))
    parts += [
        _tex_one(results, t, False, _tex_label(name, metric, t.model))
        for (m, met), t in results.tables.items()
        if met == metric
    ]
    return "\n\n".join(parts) + "\n"


def long_csv(results: StudyResults) -> pd.DataFrame:
    """Every cell as a row: model, metric, fake_set, condition, value (and low, high)."""
    out = []
    for (model, metric), t in results.tables.items():
        for row in t.values.index:
            for c in t.values.columns:
                rec = {
                    "model": model,
                    "metric": metric,
                    "fake_set": row,
                    "condition": c,
                    "value": float(t.values.loc[row, c]),
                }
                if t.low is not None:
                    rec["low"], rec["high"] = float(t.low.loc[row, c]), float(t.high.loc[row, c])
                out.append(rec)
    frame = pd.DataFrame(out)
    frame["real_sets"] = "+".join(results.real_sets)
    return frame


def _delta_rows(deltas: list, label) -> list[tuple[str, str, str, str, str]]:
    out = []
    for d in deltas:
        ci = f"[{d.low:+.{DIGITS}f}, {d.high:+.{DIGITS}f}]"
        out.append((label(d.label), f"{d.a:.{DIGITS}f}", f"{d.b:.{DIGITS}f}", f"{d.delta:+.{DIGITS}f}", ci))
    return out


def delta_markdown(title: str, deltas: list, label, side_a: str, side_b: str) -> str:
    """A delta table (rows: what is compared) with paired intervals, as Markdown."""
    if not deltas:
        return ""
    d0 = deltas[0]
    lines = [
        f"**{title}** (paired bootstrap, {d0.n} replicates, {d0.level:.0%} interval; {d0.images} paired images)",
        "",
        f"| | {side_a} | {side_b} | Δ | interval |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _delta_rows(deltas, label)]
    return "\n".join(lines) + "\n"


def delta_latex(title: str, deltas: list, label, side_a: str, side_b: str, tex_label: str) -> str:
    """The same delta table as a booktabs LaTeX table."""
    if not deltas:
        return ""
    d0 = deltas[0]
    cap = f"{title} (paired bootstrap, {d0.n} replicates, {d0.level:.0%} interval; {d0.images} paired images)."
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(cap)}}}",
        rf"\label{{{tex_label}}}",
        r"\begin{tabular}{lrrrr}",
        r"\toprule",
        rf" & {tex_escape(side_a)} & {tex_escape(side_b)} & $\Delta$ & interval \\",
        r"\midrule",
    ]
    lines += [" & ".join([tex_escape(r[0]), *r[1:]]) + r" \\" for r in _delta_rows(deltas, label)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
