"""Write a study's outputs from the store: tables (Markdown, LaTeX, CSV, JSON), figures, HTML.

Usage::

    study = load_study("robustness/study/roger.yaml")
    written = write_outputs(study, Path("output/studies/roger"), ReportOptions.parse("all"))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from db.imagesets import sha256_file
from db.session import REPO_ROOT, session_scope
from robustness.study.results import ModelScores, StudyResults, compute_results
from robustness.study.schema import Study
from robustness.study.store import condition_seeds, load_scores, model_rows
from robustness.study.tables import (
    delta_latex,
    delta_markdown,
    latex_tables,
    long_csv,
    markdown_tables,
)

__all__ = ["FORMATS", "ReportOptions", "Written", "html_report", "load_results", "write_outputs"]

FORMATS = ("md", "csv", "json", "tex", "figures", "html")


@dataclass(frozen=True)
class ReportOptions:
    formats: tuple[str, ...] = ("md", "csv", "json")
    ci: int | None = None  # bootstrap replicates; None: the study's; 0: none
    deltas: tuple[tuple[str, str], ...] = ()  # extra (model a, model b) pairs

    @classmethod
    def parse(
        cls, formats: str, *, ci: int | None = None, deltas: list[str] | None = None, study: Study | None = None
    ) -> ReportOptions:
        """From CLI text: ``"md,tex"`` or ``"all"``; deltas as ``"A:B"``."""
        names = [f.strip() for f in formats.split(",") if f.strip()]
        if "all" in names:
            names = list(FORMATS)
        for n in names:
            if n not in FORMATS:
                raise ValueError(f"unknown output format {n!r}; valid: {', '.join(FORMATS)}, all")
        if ci is not None and ci != 0 and ci < 10:
            raise ValueError(f"--ci must be 0 (none) or at least 10 replicates, got {ci}")
        pairs = []
        models = [m.name for m in study.models] if study is not None else None
        for d in deltas or []:
            a, sep, b = d.partition(":")
            if not sep or not a or not b:
                raise ValueError(f"--delta takes A:B (two model names), got {d!r}")
            for side in (a, b):
                if models is not None and side not in models:
                    raise ValueError(f"--delta: {side!r} is not one of the study's models: {', '.join(models)}")
            pairs.append((a, b))
        return cls(tuple(dict.fromkeys(names)), ci, tuple(pairs))


@dataclass(frozen=True)
class Written:
    headline: str  # the first metric's Markdown tables, for the terminal
    files: list[Path] = field(default_factory=list)


def load_results(study: Study, *, url: str | None = None, ci: int | None = None) -> StudyResults:
    """Scores of every model of the study from the store, and its tables."""
    with session_scope(url, readonly=True) as s:
        scores = {m.name: ModelScores(m.name, load_scores(s, m.name, study.condition_ids)) for m in study.models}
    if ci is not None and ci > 0:
        from dataclasses import replace

        from robustness.study.schema import Bootstrap

        boot = study.bootstrap or Bootstrap()
        study = replace(study, bootstrap=replace(boot, n=ci))
    elif ci == 0:
        from dataclasses import replace

        study = replace(study, bootstrap=None)
    return compute_results(study, scores)


def _write(path: Path, text: str, files: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    files.append(path)


def _json_doc(results: StudyResults) -> dict:
    study = results.study
    return {
        "study": study.name,
        "real_sets": results.real_sets,
        "fake_sets": results.fake_sets,
        "conditions": [{"id": c.id, "label": c.label} for c in study.conditions],
        "baseline": study.baseline,
        "bootstrap": (
            None
            if study.bootstrap is None
            else {"n": study.bootstrap.n, "seed": study.bootstrap.seed, "level": study.bootstrap.level}
        ),
        "means": {
            m: {met: {c: results.mean(m, met, c) for c in study.condition_ids} for met in study.metrics}
            for m in results.scores
        },
    }


def write_outputs(study: Study, out: Path, opts: ReportOptions = ReportOptions(), *, url: str | None = None) -> Written:
    """Compute the study's results from the store and write the chosen formats into ``out``."""
    results = load_results(study, url=url, ci=opts.ci)
    study = results.study
    files: list[Path] = []
    out = Path(out)
    for metric in study.metrics:
        if "md" in opts.formats:
            _write(out / f"table_{metric}.md", markdown_tables(results, metric), files)
        if "tex" in opts.formats:
            _write(out / f"table_{metric}.tex", latex_tables(results, metric), files)
    if "csv" in opts.formats:
        out.mkdir(parents=True, exist_ok=True)
        long_csv(results).to_csv(out / "table.csv", index=False)
        files.append(out / "table.csv")
    if "json" in opts.formats:
        _write(out / "results.json", json.dumps(_json_doc(results), indent=1), files)
    deltas = compute_deltas(results, opts)
    metric = study.metrics[0]
    if deltas and "md" in opts.formats:
        _write(
            out / f"deltas_{metric}.md",
            "\n".join(delta_markdown(d.title, d.rows, study.label, d.side_a, d.side_b) for d in deltas),
            files,
        )
    if deltas and "tex" in opts.formats:
        _write(
            out / f"deltas_{metric}.tex",
            "\n".join(
                delta_latex(d.title, d.rows, study.label, d.side_a, d.side_b, f"tab:{study.name}-delta-{i}")
                for i, d in enumerate(deltas)
            ),
            files,
        )
    figures = []
    if "figures" in opts.formats or "html" in opts.formats:
        from robustness.study.figures import write_figures

        figures = write_figures(results, out / "figures")
        files += [p for f in figures for p in f.paths.values()]
    if "html" in opts.formats:
        from robustness.study.html import git_commit, render_html

        with session_scope(url, readonly=True) as s:
            seeds = condition_seeds(s, results.real_sets + results.fake_sets, study.condition_ids)
            infos = _model_infos(s, study)
        _write(
            out / "report.html",
            render_html(results, figures, infos, seeds, deltas=deltas, commit=git_commit(REPO_ROOT)),
            files,
        )
    headline = markdown_tables(results, metric) + "".join(
        "\n" + delta_markdown(d.title, d.rows, study.label, d.side_a, d.side_b) for d in deltas
    )
    return Written(headline, files)


@dataclass(frozen=True)
class DeltaTable:
    title: str
    side_a: str  # column heading of side a
    side_b: str
    rows: list  # robustness.study.deltas.Delta


def compute_deltas(results: StudyResults, opts: ReportOptions) -> list[DeltaTable]:
    """The study's and the options' model pairs per condition; with intervals switched on,
    also each condition against the baseline for every model. First metric only."""
    from robustness.study.deltas import condition_deltas, model_deltas
    from robustness.study.schema import Bootstrap

    study = results.study
    boot = study.bootstrap or Bootstrap()
    metric = study.metrics[0].upper()
    kw = {"n": boot.n, "seed": boot.seed, "level": boot.level}
    out = []
    for a, b in dict.fromkeys(study.deltas + opts.deltas):
        out.append(DeltaTable(f"{metric}: {a} minus {b}, per condition", a, b, model_deltas(results, a, b, **kw)))
    if study.bootstrap is not None:
        for m in results.scores:
            base = study.label(study.baseline)
            out.append(
                DeltaTable(
                    f"{metric} of {m}: each condition minus {base}",
                    "condition",
                    base,
                    condition_deltas(results, m, **kw),
                )
            )
    return [d for d in out if d.rows]


def _files_sha256(paths: list[Path]) -> str:
    """sha256 over (name, sha256) of each file, sorted: one digest for a set of score files."""
    lines = sorted(f"{p.name}\t{sha256_file(p)}" for p in paths)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _model_infos(session, study: Study) -> list:
    from robustness.study.html import ModelInfo

    rows = model_rows(session, [m.name for m in study.models])
    infos = []
    for m in study.models:
        if not m.imported:
            row = rows.get(m.name)
            infos.append(ModelInfo(m.name, str(m.weights), row.sha256 if row else sha256_file(m.weights), "weights"))
        elif m.study is not None:
            infos.append(
                ModelInfo(
                    m.name,
                    f"{m.study} (study folder)",
                    _files_sha256(sorted(m.study.rglob("*.csv"))),
                    "imported scores",
                )
            )
        else:
            paths = [f.csv for f in m.score_files]
            infos.append(ModelInfo(m.name, ", ".join(map(str, paths)), _files_sha256(paths), "imported scores"))
    return infos


def html_report(study: Study, *, url: str | None = None) -> bytes:
    """The study's self-contained HTML report (figures inline) from the store, as bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="study-report-") as tmp:
        write_outputs(study, Path(tmp), ReportOptions(formats=("html",)), url=url)
        return (Path(tmp) / "report.html").read_bytes()
