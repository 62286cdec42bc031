"""The robustness study's evaluation protocol (roger-study README §3.1), reusable in memory.

For one condition (a folder of prediction CSVs, or a dict of data frames): each fake set F is
scored against each real set R on the pooled F ∪ R (fake = positive, score column ``spai`` read
as float32); a fake set's figure is the plain mean over the real sets; the condition's figure is
the plain mean over the fake sets. Only ``fake*.csv`` / ``real*.csv`` directly in a folder count.

CLI::

    python -m robustness.evaluate --metric auc --input_dir robustness/study/roger-study/inference
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robustness.metrics import BootstrapCI, get_metric

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


def _read(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    missing = {SCORE_COLUMN, LABEL_COLUMN} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    # Parsed as float64 then cast, as the study did (pandas -> torch float32 tensor).
    return pd.DataFrame(
        {
            SCORE_COLUMN: df[SCORE_COLUMN].to_numpy(np.float64).astype(np.float32),
            LABEL_COLUMN: df[LABEL_COLUMN].to_numpy().astype(np.int64),
        }
    )


def load_prediction_dir(path: str | Path) -> dict[str, pd.DataFrame]:
    """``{"fake_<set>": frame, "real_<set>": frame}`` from the fake*/real* CSVs directly in
    ``path`` (non-recursive, as the study's glob); frames have columns spai (float32), class."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {folder}")
    files = sorted(folder.glob("fake*.csv")) + sorted(folder.glob("real*.csv"))
    if not files:
        raise ValueError(f"{folder}: no fake*.csv or real*.csv files directly in it")
    return {f"{p.stem[:4]}_{set_name(p.stem)}": _read(p) for p in files}


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
                f"{kind} sets {unknown or '(none)'} not available; "
                f"have: {', '.join(sorted(pool)) or '(none)'}"
            )
    rows = {}
    for f in fake_names:
        fs = fakes[f][SCORE_COLUMN].to_numpy(np.float32)
        rows[f] = {}
        for r in real_names:
            rs = reals[r][SCORE_COLUMN].to_numpy(np.float32)
            scores = np.concatenate([fs, rs])
            labels = np.r_[np.ones(fs.size, np.int8), np.zeros(rs.size, np.int8)]
            rows[f][r] = fn(labels, scores)
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
    recomputes the whole table's mean."""
    fn = get_metric(metric).fn
    est = study_table(frames, metric=metric, real_sets=real_sets, fake_sets=fake_sets)
    fakes, reals = _split(frames)
    fs = [fakes[f][SCORE_COLUMN].to_numpy(np.float32) for f in est.table.index]
    rs = [reals[r][SCORE_COLUMN].to_numpy(np.float32) for r in est.real_sets]
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for i in range(n):
        fb = [a[rng.integers(0, a.size, a.size)] for a in fs]
        rb = [a[rng.integers(0, a.size, a.size)] for a in rs]
        cells = [
            [
                fn(np.r_[np.ones(f.size, np.int8), np.zeros(r.size, np.int8)], np.r_[f, r])
                for r in rb
            ]
            for f in fb
        ]
        values[i] = np.mean(np.mean(cells, axis=1))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return BootstrapCI(est.mean, float(low), float(high), level, n)


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
    tables = {
        c: study_table(conditions[c], metric=metric, real_sets=real_sets, fake_sets=fake_sets)
        for c in names
    }
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


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints each condition's table and, for several, the deltas."""
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
    p.add_argument(
        "--ci", type=int, default=0, metavar="N", help="bootstrap N replicates for a 95%% CI"
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
            conditions[name] = load_prediction_dir(d)
        reals = args.real_sets.split(",") if args.real_sets else None
        cmp = compare_conditions(
            conditions, metric=args.metric, baseline=args.baseline, real_sets=reals
        )
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
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
        pd.DataFrame(_long_rows(cmp)).to_csv(args.csv, index=False)
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
        Path(args.json).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
