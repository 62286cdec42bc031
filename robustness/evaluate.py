"""The robustness study's evaluation protocol (roger-study README §3.1), reusable in memory.

For one condition (a folder of prediction CSVs, or a dict of data frames): each fake set F is
scored against each real set R on the pooled F ∪ R (score column ``spai`` read as float32;
labels from each row's ``class`` column, as the study's code reads them, else fake = positive
by file name); a fake set's figure is the plain mean over the real sets; the condition's figure
is the plain mean over the fake sets. Only ``fake*.csv`` / ``real*.csv`` directly in a folder
count. A row without a score is refused, naming file and row, unless ``--drop-missing``.

CLI::

    python -m robustness.evaluate --metric auc --input_dir robustness/study/roger-study/inference
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robustness.metrics import (
    BootstrapCI,
    get_metric,
    percentile_interval,
    protocol_replicates,
    resample_counts,
)
from core.atomic import atomic_path, write_text
from core.cli_errors import UserError, one_line, run_main

__all__ = [
    "Comparison",
    "StudyTable",
    "compare_conditions",
    "load_prediction_dir",
    "main",
    "study_mean_ci",
    "set_name",
    "study_table",
]

SCORE_COLUMN = "spai"
LABEL_COLUMN = "class"
ROWS_SHOWN = 5  # rows named in an error about missing or bad values
_SUFFIX = re.compile(r"_test_embeddings.*$")  # the combi-model files' name suffix


@dataclass(frozen=True)
class StudyTable:
    """One condition's table: rows = fake sets, columns = real sets + "mean"."""

    metric: str
    table: pd.DataFrame
    mean: float  # plain mean over the fake sets of their per-fake means

    @property
    def real_sets(self) -> list[str]:
        return [c for c in self.table.columns if c != "mean"]


@dataclass(frozen=True)
class Comparison:
    """Several conditions on the same fake and real sets, with deltas against a baseline."""

    metric: str
    baseline: str
    fake_sets: list[str]
    real_sets: list[str]
    tables: dict[str, StudyTable]  # condition -> its table
    per_fake: pd.DataFrame  # rows = fake sets, columns = conditions (per-fake means)
    summary: pd.DataFrame  # rows = conditions; columns "mean", "delta"


def set_name(stem: str) -> str:
    """'fake_dalle2' -> 'dalle2'; 'real_coco_test_embeddings_prediction_results' -> 'coco'."""
    return _SUFFIX.sub("", re.sub(r"^(fake|real)_?", "", stem)) or stem


def _rows_text(path: Path, rows: np.ndarray, images: pd.Series | None) -> str:
    """'rows 3, 7 (x.png, y.png)' for 0-based data rows (printed 1-based, as in a CSV viewer)."""
    shown = rows[:ROWS_SHOWN]
    text = ", ".join(str(int(r) + 1) for r in shown) + (", ..." if rows.size > ROWS_SHOWN else "")
    if images is not None:
        text += f" ({', '.join(str(images.iloc[int(r)]) for r in shown)})"
    return f"{path}: row{'s' if rows.size > 1 else ''} {text}"


def _read(path: Path, *, drop_missing: bool = False, warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One prediction CSV as columns spai (float32) and class (int64).

    Labels come from the ``class`` column when present (as the study's code reads them), else
    from the file's ``fake``/``real`` prefix. Rows without a score are refused, naming them,
    unless ``drop_missing`` (then they are left out and ``warn`` is told).
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if SCORE_COLUMN not in df.columns:
        raise ValueError(f"{path}: missing column(s) ['{SCORE_COLUMN}']")
    images = df["image"] if "image" in df.columns else None
    text = df[SCORE_COLUMN].str.strip()
    scores = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(np.isnan(scores) & (text != "").to_numpy())
    if bad.size:
        raise ValueError(f"{_rows_text(path, bad, images)}: score is not a number")
    if LABEL_COLUMN in df.columns:
        labels = pd.to_numeric(df[LABEL_COLUMN].str.strip(), errors="coerce").to_numpy()
        bad = np.flatnonzero(~np.isin(labels, (0, 1)))
        if bad.size:
            raise ValueError(f"{_rows_text(path, bad, images)}: class must be 0 or 1")
    else:
        labels = np.full(len(df), int(path.name.startswith("fake")))
    missing = np.flatnonzero(np.isnan(scores))
    if missing.size:
        where = _rows_text(path, missing, images)
        if not drop_missing:
            raise ValueError(
                f"{where}: no score (an image infer could not score); pass --drop-missing to leave such rows out"
            )
        if warn is not None:
            warn(f"{where}: no score; left out (--drop-missing)")
    keep = ~np.isnan(scores)
    expected = int(path.name.startswith("fake"))
    off = int((labels[keep] != expected).sum())
    if off and warn is not None:
        warn(
            f"{path}: {off} row(s) labelled class {1 - expected} in a {path.name[:4]} file; "
            f"the class column decides, as in the study's code"
        )
    # Parsed as float64 then cast, as the study did (pandas -> torch float32 tensor).
    return pd.DataFrame({SCORE_COLUMN: scores[keep].astype(np.float32), LABEL_COLUMN: labels[keep].astype(np.int64)})


def load_prediction_dir(
    path: str | Path, *, drop_missing: bool = False, warn: Callable[[str], None] | None = None
) -> dict[str, pd.DataFrame]:
    """``{"fake_<set>": frame, "real_<set>": frame}`` from the fake*/real* CSVs directly in
    ``path`` (non-recursive, as the study's glob); frames have columns spai (float32), class.
    ``drop_missing`` and ``warn`` as in ``_read``."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {folder}")
    files = sorted(folder.glob("fake*.csv")) + sorted(folder.glob("real*.csv"))
    if not files:
        raise ValueError(f"{folder}: no fake*.csv or real*.csv files directly in it")
    return {f"{p.stem[:4]}_{set_name(p.stem)}": _read(p, drop_missing=drop_missing, warn=warn) for p in files}


def _scores_labels(frame: pd.DataFrame, name: str, default: int) -> tuple[np.ndarray, np.ndarray]:
    """A set's float32 scores and its labels (``class`` column, else ``default``)."""
    scores = frame[SCORE_COLUMN].to_numpy(np.float32)
    if np.isnan(scores).any():
        raise ValueError(f"set {name!r}: {int(np.isnan(scores).sum())} score(s) are missing")
    if LABEL_COLUMN in frame.columns:
        return scores, frame[LABEL_COLUMN].to_numpy(np.int64)
    return scores, np.full(scores.size, default, np.int64)


def _split(
    frames: dict[str, pd.DataFrame],
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    fakes = {set_name(k): v for k, v in frames.items() if k.startswith("fake")}
    reals = {set_name(k): v for k, v in frames.items() if k.startswith("real")}
    return fakes, reals


def study_table(
    frames: dict[str, pd.DataFrame],
    *,
    metric: str = "auc",
    real_sets: list[str] | None = None,
    fake_sets: list[str] | None = None,
) -> StudyTable:
    """The study's table for one condition from in-memory frames keyed ``fake_*``/``real_*``.

    Args:
        frames: each with columns ``spai`` (score) and ``class`` (1 fake, 0 real).
        real_sets / fake_sets: names to use (default: all present), e.g. ``["coco", "fodb"]``.
    """
    fn = get_metric(metric).fn
    fakes, reals = _split(frames)
    fake_names = sorted(fakes) if fake_sets is None else list(fake_sets)
    real_names = sorted(reals) if real_sets is None else list(real_sets)
    for names, pool, kind in ((fake_names, fakes, "fake"), (real_names, reals, "real")):
        unknown = [n for n in names if n not in pool]
        if unknown or not names:
            raise ValueError(
                f"{kind} sets {unknown or '(none)'} not available; have: {', '.join(sorted(pool)) or '(none)'}"
            )
    rows = {}
    for f in fake_names:
        fs, fy = _scores_labels(fakes[f], f"fake_{f}", 1)
        rows[f] = {}
        for r in real_names:
            rs, ry = _scores_labels(reals[r], f"real_{r}", 0)
            rows[f][r] = fn(np.r_[fy, ry], np.r_[fs, rs])
    table = pd.DataFrame.from_dict(rows, orient="index")[real_names]
    table["mean"] = table[real_names].mean(axis=1)
    table.index.name = "fake_set"
    return StudyTable(metric, table, float(table["mean"].mean()))


def study_mean_ci(
    frames: dict[str, pd.DataFrame],
    *,
    metric: str = "auc",
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    real_sets: list[str] | None = None,
    fake_sets: list[str] | None = None,
) -> BootstrapCI:
    """Percentile bootstrap interval of a condition's mean figure: each replicate resamples
    every fake and real set (with replacement, once per replicate, shared by all pairs) and
    recomputes the whole table's mean (``robustness.metrics.protocol_replicates``; each row
    keeps its label)."""
    est = study_table(frames, metric=metric, real_sets=real_sets, fake_sets=fake_sets)
    fakes, reals = _split(frames)
    fs = [_scores_labels(fakes[f], f"fake_{f}", 1) for f in est.table.index]
    rs = [_scores_labels(reals[r], f"real_{r}", 0) for r in est.real_sets]
    rng = np.random.default_rng(seed)
    wf = [resample_counts(rng, a.size, n) for a, _ in fs]
    wr = [resample_counts(rng, a.size, n) for a, _ in rs]
    values = protocol_replicates(
        [a for a, _ in fs],
        [a for a, _ in rs],
        wf,
        wr,
        metric=metric,
        fake_labels=[y for _, y in fs],
        real_labels=[y for _, y in rs],
    )
    low, high = percentile_interval(values, level=level)
    return BootstrapCI(est.mean, low, high, level, n)


def compare_conditions(
    conditions: dict[str, dict[str, pd.DataFrame]],
    *,
    metric: str = "auc",
    baseline: str | None = None,
    real_sets: list[str] | None = None,
    fake_sets: list[str] | None = None,
) -> Comparison:
    """Tables for several conditions on common sets, and each mean's delta vs ``baseline``.

    By default the real (and fake) sets are those present in every condition, so conditions
    are compared on the same images; ``baseline`` defaults to "original" if present, else the
    first condition.
    """
    if not conditions:
        raise ValueError("no conditions to compare")
    names = list(conditions)
    split = {c: _split(fr) for c, fr in conditions.items()}
    if real_sets is None:
        real_sets = sorted(set.intersection(*(set(split[c][1]) for c in names)))
    if fake_sets is None:
        fake_sets = sorted(set.intersection(*(set(split[c][0]) for c in names)))
    base = baseline or ("original" if "original" in conditions else names[0])
    if base not in conditions:
        raise ValueError(f"baseline {base!r} is not one of the conditions: {', '.join(names)}")
    tables = {c: study_table(conditions[c], metric=metric, real_sets=real_sets, fake_sets=fake_sets) for c in names}
    per_fake = pd.DataFrame({c: t.table["mean"] for c, t in tables.items()})
    means = pd.Series({c: t.mean for c, t in tables.items()})
    summary = pd.DataFrame({"mean": means, "delta": means - means[base]})
    summary.index.name = "condition"
    return Comparison(metric, base, list(fake_sets), list(real_sets), tables, per_fake, summary)


def format_table(st: StudyTable, title: str) -> str:
    """Plain-text table as printed by the CLI."""
    lines = [f"== {title}: {st.metric.upper()} per fake set vs each real set =="]
    lines.append(st.table.to_string(float_format=lambda v: f"{v:.4f}"))
    lines.append(f"Average {st.metric.upper()}: {st.mean:.4f}")
    return "\n".join(lines)


def _long_rows(cmp: Comparison) -> list[dict]:
    rows = []
    for cond, st in cmp.tables.items():
        for fake, row in st.table.iterrows():
            for real, value in row.items():
                rows.append(
                    {
                        "condition": cond,
                        "fake_set": fake,
                        "real_set": real,
                        "metric": cmp.metric,
                        "value": float(value),
                    }
                )
        rows.append(
            {
                "condition": cond,
                "fake_set": "mean",
                "real_set": "mean",
                "metric": cmp.metric,
                "value": st.mean,
            }
        )
    return rows


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints each condition's table and, for several, the deltas. A user
    error prints one line and returns 2."""
    return run_main(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m robustness.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--metric", default="auc", help="auc | ap | acc | tpr@fpr1%% | tpr@fpr5%% | eer")
    p.add_argument(
        "--input_dir",
        "--input-dir",
        dest="input_dirs",
        action="append",
        required=True,
        help="folder of fake*.csv / real*.csv predictions (repeat to compare)",
    )
    p.add_argument("--baseline", help="condition (folder name) the deltas refer to")
    p.add_argument("--real_sets", "--real-sets", help="comma-separated real sets to average over")
    p.add_argument("--ci", type=int, default=0, metavar="N", help="bootstrap N replicates for a 95%% CI")
    p.add_argument(
        "--drop-missing",
        action="store_true",
        help="leave out rows without a score (default: refuse them, naming file and row)",
    )
    p.add_argument("--csv", help="write the long table (condition, fake_set, real_set, value)")
    p.add_argument("--json", help="write tables and summary as JSON")
    args = p.parse_args(argv)
    try:
        get_metric(args.metric)
        conditions = {}
        for d in args.input_dirs:
            name = Path(d).resolve().name
            if name in conditions:
                raise ValueError(f"two input folders are both named {name!r}")
            conditions[name] = load_prediction_dir(d, drop_missing=args.drop_missing, warn=_warn)
        reals = args.real_sets.split(",") if args.real_sets else None
        cmp = compare_conditions(conditions, metric=args.metric, baseline=args.baseline, real_sets=reals)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise UserError(one_line(exc)) from None
    for cond, st in cmp.tables.items():
        print(format_table(st, cond), end="\n\n")
    if len(cmp.tables) > 1:
        print(f"== mean {cmp.metric.upper()} per condition (delta vs {cmp.baseline}) ==")
        print(cmp.summary.to_string(float_format=lambda v: f"{v:+.4f}" if v < 0 else f"{v:.4f}"))
    cis = {}
    if args.ci > 0:
        print(f"\n== {cmp.metric.upper()} mean with 95% bootstrap CI ({args.ci} replicates) ==")
        for c in cmp.tables:
            ci = study_mean_ci(
                conditions[c],
                metric=cmp.metric,
                n=args.ci,
                real_sets=cmp.real_sets,
                fake_sets=cmp.fake_sets,
            )
            cis[c] = {"low": ci.low, "high": ci.high, "level": ci.level, "n": ci.n}
            print(f"{c}: {ci.estimate:.4f} [{ci.low:.4f}, {ci.high:.4f}]")
    if args.csv:
        with atomic_path(args.csv) as tmp:
            pd.DataFrame(_long_rows(cmp)).to_csv(tmp, index=False)
    if args.json:
        doc = {
            "metric": cmp.metric,
            "baseline": cmp.baseline,
            "real_sets": cmp.real_sets,
            "fake_sets": cmp.fake_sets,
            "conditions": {
                c: {
                    "mean": st.mean,
                    "delta": float(cmp.summary.loc[c, "delta"]),
                    "table": st.table.to_dict(orient="index"),
                    **({"ci": cis[c]} if c in cis else {}),
                }
                for c, st in cmp.tables.items()
            },
        }
        write_text(args.json, json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
