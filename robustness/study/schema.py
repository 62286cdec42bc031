"""The study file: a YAML document parsed into frozen dataclasses, validated key by key.

A study names its image sets, the conditions to test, the models (weights files, or score
files imported from elsewhere), the metrics and the real sets every fake set is averaged over.
Paths are relative to the study file's folder. Any problem raises ``StudyFileError`` naming
the key, e.g. ``models[1].weights: file not found: /x/y.pth``.

Example::

    name: demo
    image_sets:
      - {name: demo-test, csv: ../data/demo/demo.csv, split: test, build: demo}
    conditions: [original, meme, {id: jpeg/q75, label: JPEG 75, params: {quality: 75}}]
    models:
      - {name: demo, weights: ../weights/demo/spai_demo.pth, config: ../weights/demo/spai_demo.yaml}
    metrics: [auc, ap]
    real_sets: [demo-test-real]
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robustness.metrics import METRICS

__all__ = [
    "Bootstrap",
    "ConditionSpec",
    "ImageSetSpec",
    "ModelSpec",
    "ScoreFile",
    "Study",
    "StudyFileError",
    "load_study",
    "parse_study",
    "study_from_text",
]

MAX_STUDY_BYTES = 1 << 20  # a study file is a few hundred bytes; refuse anything past 1 MiB
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ ,()+-]{0,199}$")  # store names (sets, models)
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # becomes an output folder name
BUILDERS = ("demo",)  # image sets that can be built on demand (python -m spai.demo build)
TOP_KEYS = (
    "name",
    "description",
    "image_sets",
    "conditions",
    "models",
    "metrics",
    "real_sets",
    "fake_sets",
    "baseline",
    "bootstrap",
    "inference",
    "deltas",
)


class StudyFileError(ValueError):
    """A study file that cannot be used; ``key`` is the offending key's path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


@dataclass(frozen=True)
class ImageSetSpec:
    """One declared image set: a labelled folder, a real/+fake/ folder, or an official CSV."""

    name: str
    folder: Path | None = None  # a folder of images (with ``kind``) or with real/ and fake/
    kind: str | None = None  # real | fake, for a plain folder
    layout: str | None = None  # "real-fake": label sub-folders (db.imagesets.label_layout)
    csv: Path | None = None  # official image,class,split CSV
    root: Path | None = None  # where CSV paths point (default: the CSV's folder)
    split: str | None = None  # keep only this split of the CSV
    generator: str | None = None
    build: str | None = None  # "demo": built by python -m spai.demo build when absent

    def store_names(self) -> dict[str, str]:
        """The image sets this declaration becomes in the store: name -> kind."""
        if self.layout == "real-fake":
            return {f"{self.name}-real": "real", f"{self.name}-fake": "fake"}
        if self.kind is not None:
            return {self.name: self.kind}
        kinds = _csv_kinds(self.csv, self.split) if self.csv and self.csv.is_file() else {"real", "fake"}
        if len(kinds) == 1:
            return {self.name: next(iter(kinds))}
        return {f"{self.name}-real": "real", f"{self.name}-fake": "fake"}


@dataclass(frozen=True)
class ConditionSpec:
    id: str  # registry id (or, for imported scores, the id the scores were stored under)
    label: str  # column heading in tables and figures
    params: dict[str, Any] = field(default_factory=dict)  # checked against the registry


@dataclass(frozen=True)
class ScoreFile:
    """One official ``infer`` output CSV to import as a run."""

    csv: Path
    condition: str
    imageset: str | None = None  # default: the file's stem
    score_column: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the model's name in the store
    weights: Path | None = None
    config: Path | None = None
    study: Path | None = None  # a study folder of prediction CSVs (python -m db import-study)
    score_files: tuple[ScoreFile, ...] = ()

    @property
    def imported(self) -> bool:
        return self.weights is None


@dataclass(frozen=True)
class Bootstrap:
    n: int = 1000  # replicates
    seed: int = 0
    level: float = 0.95


@dataclass(frozen=True)
class Study:
    name: str
    path: Path  # the study file
    text: str  # its content, as written
    image_sets: tuple[ImageSetSpec, ...]
    conditions: tuple[ConditionSpec, ...]
    models: tuple[ModelSpec, ...]
    metrics: tuple[str, ...] = ("auc",)
    real_sets: tuple[str, ...] | None = None  # None: every real set scored under all conditions
    fake_sets: tuple[str, ...] | None = None  # None: every fake set scored
    baseline: str | None = None
    bootstrap: Bootstrap | None = None
    description: str = ""
    device: str = "auto"
    batch_size: int = 16
    deltas: tuple[tuple[str, str], ...] = ()  # (model a, model b): a minus b per condition

    @property
    def condition_ids(self) -> list[str]:
        return [c.id for c in self.conditions]

    def label(self, condition_id: str) -> str:
        return next((c.label for c in self.conditions if c.id == condition_id), condition_id)

    def paths(self) -> list[Path]:
        """Every file or folder the study names (sets, weights, configs, score files)."""
        found = [p for s in self.image_sets for p in (s.folder, s.csv, s.root)]
        for m in self.models:
            found += [m.weights, m.config, m.study, *(f.csv for f in m.score_files)]
        return [p for p in found if p is not None]


# --- helpers --------------------------------------------------------------------------------


def _csv_kinds(path: Path, split: str | None) -> set[str]:
    kinds = set()
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            if split is None or (rec.get("split") or "") == split:
                label = (rec.get("class") or "").strip()
                if label in ("0", "1"):
                    kinds.add("fake" if label == "1" else "real")
    return kinds or {"real", "fake"}


def _type(key: str, value: Any, typ: type | tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) and typ is not bool and bool not in (typ if isinstance(typ, tuple) else (typ,)):
        raise StudyFileError(key, f"must be {what}, got {value!r}")
    if not isinstance(value, typ):
        raise StudyFileError(key, f"must be {what}, got {type(value).__name__} {value!r}")
    return value


def _keys(key: str, mapping: dict, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    for k in mapping:
        if k not in allowed:
            where = f"{key}.{k}" if key else str(k)
            raise StudyFileError(where, f"unknown key; valid keys here: {', '.join(allowed)}")
    for k in required:
        if k not in mapping or mapping[k] in (None, ""):
            raise StudyFileError(f"{key}.{k}" if key else k, "is required")


def _name(key: str, value: Any, pattern: re.Pattern[str] = NAME) -> str:
    _type(key, value, str, "a string")
    if not pattern.match(value):
        raise StudyFileError(
            key,
            f"{value!r} is not a valid name (a letter or digit first, then letters, digits, spaces and . _ - ( ) +)",
        )
    return value


def _path(key: str, value: Any, base: Path, *, must: str | None = "file") -> Path:
    _type(key, value, str, "a path (string)")
    p = Path(value).expanduser()
    p = (base / p if not p.is_absolute() else p).resolve()
    if must == "file" and not p.is_file():
        raise StudyFileError(key, f"file not found: {p}")
    if must == "dir" and not p.is_dir():
        raise StudyFileError(key, f"folder not found: {p}")
    return p


def _str_list(key: str, value: Any) -> tuple[str, ...]:
    _type(key, value, list, "a list")
    for i, v in enumerate(value):
        _type(f"{key}[{i}]", v, str, "a string")
    if len(set(value)) != len(value):
        raise StudyFileError(key, "lists a name twice")
    return tuple(value)


# --- sections ---------------------------------------------------------------------------------


def _image_set(key: str, raw: Any, base: Path) -> ImageSetSpec:
    _type(key, raw, dict, "a mapping")
    _keys(key, raw, ("name", "folder", "kind", "layout", "csv", "root", "split", "generator", "build"), ("name",))
    name = _name(f"{key}.name", raw["name"])
    sources = [k for k in ("folder", "csv") if k in raw]
    if len(sources) != 1:
        raise StudyFileError(key, "needs exactly one of 'folder' (with 'kind' or 'layout: real-fake') or 'csv'")
    build = raw.get("build")
    if build is not None and build not in BUILDERS:
        raise StudyFileError(f"{key}.build", f"must be one of {', '.join(BUILDERS)}, got {build!r}")
    must = None if build else "file"
    generator = raw.get("generator")
    if generator is not None:
        _type(f"{key}.generator", generator, str, "a string")
    if "folder" in raw:
        for k in ("root", "split"):
            if k in raw:
                raise StudyFileError(f"{key}.{k}", "applies to 'csv' image sets only")
        folder = _path(f"{key}.folder", raw["folder"], base, must=None if build else "dir")
        kind, layout = raw.get("kind"), raw.get("layout")
        if (kind is None) == (layout is None):
            raise StudyFileError(key, "a folder needs exactly one of 'kind: real|fake' or 'layout: real-fake'")
        if kind is not None and kind not in ("real", "fake"):
            raise StudyFileError(f"{key}.kind", f"must be 'real' or 'fake', got {kind!r}")
        if layout is not None:
            if layout != "real-fake":
                raise StudyFileError(f"{key}.layout", f"must be 'real-fake', got {layout!r}")
            from db.imagesets import label_layout

            if not build and label_layout(folder) is None:
                raise StudyFileError(
                    f"{key}.folder", f"has no real/ and fake/ sub-folders (or another label layout): {folder}"
                )
        return ImageSetSpec(name, folder=folder, kind=kind, layout=layout, generator=generator, build=build)
    for k in ("kind", "layout"):
        if k in raw:
            raise StudyFileError(
                f"{key}.{k}", "applies to 'folder' image sets only (a CSV's class column gives the labels)"
            )
    csv_path = _path(f"{key}.csv", raw["csv"], base, must=must)
    root = _path(f"{key}.root", raw["root"], base, must=None if build else "dir") if "root" in raw else csv_path.parent
    split = raw.get("split")
    if split is not None:
        _type(f"{key}.split", split, str, "a string")
    return ImageSetSpec(name, csv=csv_path, root=root, split=split, generator=generator, build=build)


def _condition(key: str, raw: Any, needs_registry: bool) -> ConditionSpec:
    import robustness  # noqa: F401  (registers every condition)
    from robustness.registry import CONDITIONS

    if isinstance(raw, str):
        raw = {"id": raw}
    _type(key, raw, dict, "a condition id or a mapping with 'id'")
    _keys(key, raw, ("id", "label", "params"), ("id",))
    cid = _type(f"{key}.id", raw["id"], str, "a string")
    label = _type(f"{key}.label", raw.get("label", cid), str, "a string")
    params = _type(f"{key}.params", raw.get("params", {}), dict, "a mapping")
    cond = CONDITIONS.get(cid)
    if cond is None and needs_registry:
        raise StudyFileError(
            f"{key}.id",
            f"unknown condition {cid!r} (models with weights need a registered condition; python -m robustness list)",
        )
    if params:
        if cond is None:
            raise StudyFileError(
                f"{key}.params", f"{cid!r} is not a registered condition, so its parameters cannot be checked"
            )
        bound = {**cond.params, **cond.save_kwargs}
        for k, v in params.items():
            if k not in bound:
                raise StudyFileError(
                    f"{key}.params.{k}", f"{cid!r} has no parameter {k!r}; its parameters: {bound or '(none)'}"
                )
            if bound[k] != v:
                raise StudyFileError(
                    f"{key}.params.{k}",
                    f"{cid!r} is registered with {k}="
                    f"{bound[k]!r}, not {v!r} (a different "
                    f"value is a different condition id)",
                )
    return ConditionSpec(cid, label, dict(params))


def _model(key: str, raw: Any, base: Path) -> ModelSpec:
    from db.importers import ROGER_STUDY_MODEL, SPAI_STUDY_MODEL

    _type(key, raw, dict, "a mapping")
    _keys(key, raw, ("name", "weights", "config", "scores"), ("name",))
    name = _name(f"{key}.name", raw["name"])
    if ("weights" in raw) == ("scores" in raw):
        raise StudyFileError(
            key, "needs exactly one of 'weights' (a checkpoint to run) or 'scores' (predictions to import)"
        )
    if "weights" in raw:
        weights = _path(f"{key}.weights", raw["weights"], base)
        config = _path(f"{key}.config", raw["config"], base) if "config" in raw else None
        return ModelSpec(name, weights=weights, config=config)
    if "config" in raw:
        raise StudyFileError(f"{key}.config", "applies to models with 'weights' only")
    scores = _type(f"{key}.scores", raw["scores"], dict, "a mapping with 'study' or 'files'")
    _keys(f"{key}.scores", scores, ("study", "files"))
    if ("study" in scores) == ("files" in scores):
        raise StudyFileError(
            f"{key}.scores",
            "needs exactly one of 'study' (a folder laid out as robustness/study/roger-study) or 'files'",
        )
    if "study" in scores:
        made = (SPAI_STUDY_MODEL, ROGER_STUDY_MODEL)
        if name not in made:
            raise StudyFileError(
                f"{key}.name", f"a study folder provides the models {' and '.join(map(repr, made))}; got {name!r}"
            )
        return ModelSpec(name, study=_path(f"{key}.scores.study", scores["study"], base, must="dir"))
    files = _type(f"{key}.scores.files", scores["files"], list, "a list")
    if not files:
        raise StudyFileError(f"{key}.scores.files", "is empty")
    out = []
    for i, f in enumerate(files):
        fk = f"{key}.scores.files[{i}]"
        _type(fk, f, dict, "a mapping")
        _keys(fk, f, ("csv", "condition", "imageset", "score_column"), ("csv", "condition"))
        imageset = _name(f"{fk}.imageset", f["imageset"]) if "imageset" in f else None
        col = f.get("score_column")
        if col is not None:
            _type(f"{fk}.score_column", col, str, "a string")
        out.append(
            ScoreFile(
                _path(f"{fk}.csv", f["csv"], base),
                _type(f"{fk}.condition", f["condition"], str, "a string"),
                imageset,
                col,
            )
        )
    return ModelSpec(name, score_files=tuple(out))


def _bootstrap(raw: Any) -> Bootstrap:
    _type("bootstrap", raw, dict, "a mapping (n, seed, level)")
    _keys("bootstrap", raw, ("n", "seed", "level"))
    n = _type("bootstrap.n", raw.get("n", Bootstrap.n), int, "an integer")
    seed = _type("bootstrap.seed", raw.get("seed", Bootstrap.seed), int, "an integer")
    level = _type("bootstrap.level", raw.get("level", Bootstrap.level), (int, float), "a number")
    if n < 10:
        raise StudyFileError("bootstrap.n", f"must be at least 10, got {n}")
    if not 0.5 <= level < 1.0:
        raise StudyFileError("bootstrap.level", f"must be in [0.5, 1), got {level}")
    return Bootstrap(n, seed, float(level))


def parse_study(raw: Any, path: Path, text: str = "") -> Study:
    """Validate a parsed study document; ``path`` anchors its relative paths."""
    if not isinstance(raw, dict):
        raise StudyFileError("", "the study file must be a YAML mapping (name:, models:, ...)")
    _keys("", raw, TOP_KEYS, ("name", "conditions", "models"))
    base = path.parent
    name = _name("name", raw["name"], STUDY_NAME)
    description = _type("description", raw.get("description", ""), str, "a string")
    sets = tuple(
        _image_set(f"image_sets[{i}]", s, base)
        for i, s in enumerate(_type("image_sets", raw.get("image_sets", []), list, "a list"))
    )
    models_raw = _type("models", raw["models"], list, "a list")
    if not models_raw:
        raise StudyFileError("models", "is empty")
    models = tuple(_model(f"models[{i}]", m, base) for i, m in enumerate(models_raw))
    for k, check in (("image_sets", [s.name for s in sets]), ("models", [m.name for m in models])):
        dup = sorted({n for n in check if check.count(n) > 1})
        if dup:
            raise StudyFileError(k, f"names {dup} are declared twice")
    if any(not m.imported for m in models) and not sets:
        raise StudyFileError("image_sets", "models with weights need image sets to score")
    conds_raw = _type("conditions", raw["conditions"], list, "a list")
    if not conds_raw:
        raise StudyFileError("conditions", "is empty")
    needs_registry = any(not m.imported for m in models)
    conditions = tuple(_condition(f"conditions[{i}]", c, needs_registry) for i, c in enumerate(conds_raw))
    ids = [c.id for c in conditions]
    if len(set(ids)) != len(ids):
        raise StudyFileError("conditions", f"lists a condition twice: {ids}")
    metrics = _str_list("metrics", raw.get("metrics", ["auc"]))
    for i, m in enumerate(metrics):
        if m not in METRICS:
            raise StudyFileError(f"metrics[{i}]", f"unknown metric {m!r}; valid: {', '.join(sorted(METRICS))}")
    if not metrics:
        raise StudyFileError("metrics", "is empty")
    declared = {n: k for s in sets for n, k in s.store_names().items()}
    only_declared = all(not m.imported for m in models)
    picks = {}
    for key, kind in (("real_sets", "real"), ("fake_sets", "fake")):
        if raw.get(key) is None:
            picks[key] = None
            continue
        names = _str_list(key, raw[key])
        if not names:
            raise StudyFileError(key, "is empty")
        for i, n in enumerate(names):
            if only_declared and declared.get(n) != kind:
                have = sorted(d for d, k in declared.items() if k == kind)
                raise StudyFileError(
                    f"{key}[{i}]", f"{n!r} is not a declared {kind} image set; declared: {', '.join(have) or '(none)'}"
                )
        picks[key] = names
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in ids:
        raise StudyFileError("baseline", f"{baseline!r} is not one of the conditions: {', '.join(ids)}")
    inference = _type("inference", raw.get("inference", {}), dict, "a mapping")
    _keys("inference", inference, ("device", "batch_size"))
    device = inference.get("device", "auto")
    if device not in ("auto", "cpu", "cuda"):
        raise StudyFileError("inference.device", f"must be auto, cpu or cuda, got {device!r}")
    batch = _type("inference.batch_size", inference.get("batch_size", 16), int, "an integer")
    if batch < 1:
        raise StudyFileError("inference.batch_size", f"must be at least 1, got {batch}")
    names = [m.name for m in models]
    deltas = []
    for i, d in enumerate(_type("deltas", raw.get("deltas", []), list, "a list")):
        _type(f"deltas[{i}]", d, dict, "a mapping with 'a' and 'b' (model names)")
        _keys(f"deltas[{i}]", d, ("a", "b"), ("a", "b"))
        for side in ("a", "b"):
            if d[side] not in names:
                raise StudyFileError(f"deltas[{i}].{side}", f"{d[side]!r} is not one of the models: {', '.join(names)}")
        deltas.append((d["a"], d["b"]))
    return Study(
        name=name,
        path=path,
        text=text,
        image_sets=sets,
        conditions=conditions,
        models=models,
        metrics=metrics,
        real_sets=picks["real_sets"],
        fake_sets=picks["fake_sets"],
        baseline=baseline or ("original" if "original" in ids else ids[0]),
        bootstrap=_bootstrap(raw["bootstrap"]) if raw.get("bootstrap") is not None else None,
        description=description,
        device=device,
        batch_size=batch,
        deltas=tuple(deltas),
    )


def study_from_text(text: str, path: Path) -> Study:
    """Validate a study file's text; ``path`` names it and anchors its relative paths."""
    if len(text.encode("utf-8")) > MAX_STUDY_BYTES:
        raise StudyFileError("", f"{path.name} is larger than {MAX_STUDY_BYTES} bytes; not a study file")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise StudyFileError(
            "", f"{path.name} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        ) from None
    return parse_study(raw, path, text)


def load_study(path: str | Path) -> Study:
    """Read and validate a study file."""
    p = Path(path).resolve()
    if not p.is_file():
        raise StudyFileError("", f"study file not found: {p}")
    if p.stat().st_size > MAX_STUDY_BYTES:
        raise StudyFileError("", f"{p} is larger than {MAX_STUDY_BYTES} bytes; not a study file")
    return study_from_text(p.read_text(encoding="utf-8", errors="strict"), p)
