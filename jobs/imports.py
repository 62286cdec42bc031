"""The ``import`` job: register image sets (a folder, an official CSV) or import stored scores
(a study folder, an official ``infer`` CSV). Each commits in batches (other writers wait at
most one batch) and checks cancel in between."""

from __future__ import annotations

from typing import Any

from db.session import session_scope
from jobs.context import JobContext
from jobs.params import CsvImport, ImportParams, RegisterCsv, RegisterFolder, StudyImport
from jobs.registry import register_handler

REGISTER_PROBLEMS_KEPT = 500  # per-row problems kept in a registration job's result
PROBLEMS_LOGGED = 50  # per-row problems of an import or registration written to the job log


def run_import(ctx: JobContext) -> dict[str, Any]:
    p: ImportParams = ctx.params
    if isinstance(p, (RegisterFolder, RegisterCsv)):
        return run_register(ctx, p)
    from db.importers import import_csv, import_study

    with session_scope(ctx.url) as s:

        def checkpoint(report) -> None:
            """Commit each imported file; check cancel."""
            s.commit()
            ctx.progress(report.runs)
            ctx.check()

        if isinstance(p, StudyImport):
            rep = import_study(s, p.folder, checkpoint=checkpoint, owner=ctx.owner)
        elif isinstance(p, CsvImport):
            rep = import_csv(
                s,
                p.csv_path,
                model_name=p.model_name,
                condition_id=p.condition_id,
                imageset=p.imageset,
                root=p.root,
                score_column=p.score_column,
                checkpoint=checkpoint,
                owner=ctx.owner,
            )
        else:
            raise TypeError(f"import job: no importer for {type(p).__name__}")
    for problem in rep.problems[:PROBLEMS_LOGGED]:
        ctx.log(problem)
    ctx.progress(rep.runs, rep.runs)  # counted in runs imported
    return {
        "runs": rep.runs,
        "images_added": rep.images_added,
        "predictions_added": rep.predictions_added,
        "problems": len(rep.problems),
        "skipped_files": len(rep.skipped),
    }


def run_register(ctx: JobContext, p: RegisterFolder | RegisterCsv) -> dict[str, Any]:
    """Register image sets from a folder (labels from its subfolders when ``kind`` is None) or
    an official CSV, hashing and decoding each image."""
    from db.imagesets import register_csv, register_folder, register_labelled_folder

    with session_scope(ctx.url) as s:
        handled = 0

        def checkpoint(n: int) -> None:
            """Commit the batch and check cancel."""
            nonlocal handled
            handled += n
            s.commit()
            ctx.progress(handled)
            ctx.check()

        if isinstance(p, RegisterFolder) and p.kind is None:
            rep = register_labelled_folder(
                s, p.folder, name=p.name, generator=p.generator, checkpoint=checkpoint, owner=ctx.owner
            )
        elif isinstance(p, RegisterFolder):
            rep = register_folder(
                s, p.folder, name=p.name, kind=p.kind, generator=p.generator, checkpoint=checkpoint, owner=ctx.owner
            )
        else:
            rep = register_csv(
                s,
                p.csv_path,
                p.root,
                name=p.name,
                generator=p.generator,
                split=p.split,
                checkpoint=checkpoint,
                owner=ctx.owner,
            )
    for problem in rep.problems[:PROBLEMS_LOGGED]:
        ctx.log(f"{problem.path}: {problem.reason}")
    seen = rep.added + rep.already_present
    ctx.progress(seen, seen + len(rep.problems))  # counted in files, problems included
    return {
        "imageset_ids": rep.imageset_ids,
        "added": rep.added,
        "already_present": rep.already_present,
        "problems": [
            {"row": q.row, "path": q.path, "problem": q.reason} for q in rep.problems[:REGISTER_PROBLEMS_KEPT]
        ],
    }


register_handler("import", run_import, params=ImportParams)
