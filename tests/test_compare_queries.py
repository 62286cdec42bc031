"""db.compare and db.browse on a real SQLite store: the study protocol, intervals, drill-down."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from db import compare
from db.browse import cell_images
from db.importers import import_study
from db.imagesets import ensure_imageset
from db.models import ORIGINAL, Image, Prediction
from db.queries import (
    bulk_insert_predictions,
    get_or_create_condition,
    get_or_create_model,
    get_or_create_run,
    insert_ignore,
)
from db.session import dispose_all, session_scope
from robustness import score_tables
from robustness.evaluate import study_table
from robustness.metrics import auc, auc_matrix, auc_replicates, resample_counts

RNG = np.random.default_rng(7)
SETS = {
    "real_a": ("real", 60, 0.3),
    "real_b": ("real", 40, 0.4),
    "fake_x": ("fake", 50, 0.7),
    "fake_y": ("fake", 30, 0.5),
}


def _store(url: str, conditions=(ORIGINAL, "jpeg/q75")) -> dict:
    """A small store: 2 real and 2 fake sets with random scores under two conditions."""
    scores: dict = {}
    with session_scope(url) as s:
        model = get_or_create_model(s, "m", origin="imported")
        for cond in conditions:
            get_or_create_condition(s, cond)
        for name, (kind, n, mu) in SETS.items():
            iset = ensure_imageset(s, name, kind=kind, root=None, origin="test")
            insert_ignore(
                s,
                Image.__table__,
                [{"imageset_id": iset.id, "relpath": f"{i}.png", "has_file": False} for i in range(n)],
            )
            ids = [im.id for im in iset.images]
            for k, cond in enumerate(conditions):
                run = get_or_create_run(s, model.id, iset.id, cond)
                sc = np.clip(RNG.normal(mu - 0.1 * k, 0.2, n), 0, 1).round(4)
                scores[(cond, name)] = sc
                rows = [{"run_id": run.id, "image_id": i, "score": float(v)} for i, v in zip(ids, sc)]
                rows[0] = {
                    "run_id": run.id,
                    "image_id": ids[0],
                    "score": None,
                    "error": "unreadable",
                }  # errors never count
                bulk_insert_predictions(s, rows)
        return {"model_id": model.id, "scores": scores}


@pytest.fixture
def store(sqlite_url: str):
    info = _store(sqlite_url)
    yield sqlite_url, info
    dispose_all()


def _frames(scores: dict, cond: str) -> dict[str, pd.DataFrame]:
    out = {}
    for (c, name), sc in scores.items():
        if c == cond:
            kind = SETS[name][0]
            out[f"{kind}_{name}"] = pd.DataFrame({"spai": sc[1:], "class": int(kind == "fake")})
    return out


def test_table_matches_the_study_protocol(store) -> None:
    url, info = store
    with session_scope(url, readonly=True) as s:
        data = compare.load_scores(s, info["model_id"])
        (row,) = compare.models_with_predictions(s)
    assert row.name == "m" and data.n_predictions == 2 * (180 - 4)  # errors are not scores
    with session_scope(url) as s:  # a new prediction changes the cache marker
        s.execute(Prediction.__table__.delete().where(Prediction.image_id == 1))
        bulk_insert_predictions(s, [{"run_id": 1, "image_id": 1, "score": 0.5}])
        assert compare.models_with_predictions(s)[0].version > row.version
    assert data.conditions == [ORIGINAL, "jpeg/q75"]
    assert score_tables.default_real_sets([data]) == ["real_a", "real_b"]
    for metric in ("auc", "ap", "acc"):
        table = score_tables.compare_table(data, metric=metric)
        for cond in data.conditions:
            ref = study_table(_frames(info["scores"], cond), metric=metric)
            got = table.values[cond].drop(score_tables.MEAN_ROW)
            want = ref.table["mean"].rename(index=lambda n: f"fake_{n}" if n[:5] != "fake_" else n)
            np.testing.assert_allclose(got.sort_index().to_numpy(), want.sort_index().to_numpy(), rtol=1e-6)
            assert table.values.loc[score_tables.MEAN_ROW, cond] == pytest.approx(ref.mean)
        np.testing.assert_allclose(table.delta[ORIGINAL], 0.0)
        assert (table.delta["jpeg/q75"] == table.values["jpeg/q75"] - table.values[ORIGINAL]).all()


def test_real_set_choice_and_missing_sets(store) -> None:
    url, info = store
    with session_scope(url, readonly=True) as s:
        data = compare.load_scores(s, info["model_id"], [ORIGINAL])
    one = score_tables.compare_table(data, real_sets=["real_b"])
    frames = {k: v for k, v in _frames(info["scores"], ORIGINAL).items() if k != "real_real_a"}
    assert one.values.loc[score_tables.MEAN_ROW, ORIGINAL] == pytest.approx(study_table(frames).mean)
    other = score_tables.compare_table(data, real_sets=["real_a", "nope"])  # "nope": not this model's
    assert other.real_sets == ["real_a"] and other.unused_real_sets == ["nope"]
    assert other.values.loc[score_tables.MEAN_ROW, ORIGINAL] == pytest.approx(
        study_table(
            {k: v for k, v in frames.items() if k != "real_real_b"}
            | {"real_real_a": _frames(info["scores"], ORIGINAL)["real_real_a"]}
        ).mean
    )
    with session_scope(url, readonly=True) as s:
        both = compare.load_scores(s, info["model_id"])
    groups = {k: v for k, v in both.groups.items() if k != ("jpeg/q75", "real_b")}
    gap = score_tables.ScoreData(both.model_id, "m", groups, both.kinds, both.imageset_ids)
    assert score_tables.default_real_sets([gap]) == ["real_a"]  # the one real set under both
    table = score_tables.compare_table(gap, real_sets=["real_a", "real_b"])
    assert table.values["jpeg/q75"].isna().all()  # a model's real set missing: column empty
    assert not table.values[ORIGINAL].isna().any()
    assert table.reasons.loc["fake_x", "jpeg/q75"] == "real set real_b not scored under jpeg/q75 by m"
    assert table.reasons.loc[score_tables.MEAN_ROW, "jpeg/q75"].startswith("no fake set has a value")
    assert (table.reasons[ORIGINAL] == "").all()
    solo = score_tables.ScoreData(
        both.model_id,
        "m",
        {k: v for k, v in both.groups.items() if k != ("jpeg/q75", "fake_y")},
        both.kinds,
        both.imageset_ids,
    )
    partly = score_tables.compare_table(solo, real_sets=["real_a"])
    assert partly.reasons.loc["fake_y", "jpeg/q75"] == "m has no scores of fake_y under jpeg/q75"
    # a condition the model never scored: one reason for its whole column, not one per set
    none = score_tables.compare_table(data, real_sets=["real_a"], conditions=[ORIGINAL, "meme"])
    assert set(none.reasons["meme"].drop(score_tables.MEAN_ROW)) == {f"{data.model_name} has no scores under meme"}
    with pytest.raises(KeyError, match="Unknown metric 'bogus'. Available"):
        score_tables.compare_table(data, metric="bogus")


def test_vectorised_bootstrap_auc_equals_explicit_resampling() -> None:
    fake, real = RNG.random(40).astype(np.float32), RNG.random(30).astype(np.float32) * 0.8
    fake[:5] = real[:5]  # ties across classes count one half
    rng = np.random.default_rng(1)
    wf, wr = resample_counts(rng, fake.size, 6), resample_counts(rng, real.size, 6)
    assert (wf.sum(axis=1) == fake.size).all()
    got = auc_replicates(fake, real, wf, wr)
    for b in range(6):
        f = np.repeat(fake, wf[b].astype(int))
        r = np.repeat(real, wr[b].astype(int))
        want = auc(np.r_[np.ones(f.size), np.zeros(r.size)], np.r_[f, r])
        assert got[b] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("metric", ["auc", "acc"])
def test_bootstrap_intervals_bracket_the_estimate(store, metric: str) -> None:
    url, info = store
    with session_scope(url, readonly=True) as s:
        data = compare.load_scores(s, info["model_id"])
    table = score_tables.compare_table(data, metric=metric)
    low, high = score_tables.bootstrap_cells(data, table, n=100, seed=3)
    cells = table.values.drop(score_tables.MEAN_ROW)
    assert (low.drop(score_tables.MEAN_ROW) <= cells + 0.02).all().all()
    assert (high.drop(score_tables.MEAN_ROW) >= cells - 0.02).all().all()
    assert ((high - low).drop(score_tables.MEAN_ROW) > 0).all().all()
    low2, _ = score_tables.bootstrap_cells(data, table, n=100, seed=3)
    pd.testing.assert_frame_equal(low, low2)  # seeded: reproducible


def test_roc_histogram_and_long_table(store) -> None:
    url, info = store
    with session_scope(url, readonly=True) as s:
        data = compare.load_scores(s, info["model_id"])
    fpr, tpr = score_tables.roc_curve(data, ORIGINAL, ["real_a", "real_b"], max_points=20)
    assert fpr[0] == 0 and tpr[-1] == 1 and len(fpr) <= 21 and (np.diff(fpr) >= 0).all()
    hist = score_tables.score_histogram(data, ORIGINAL, ["real_a"], bins=10)
    assert set(hist["kind"]) == {"real", "fake"}
    assert hist.groupby("kind")["share"].sum().to_numpy() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="no fake or no selected real"):
        score_tables.roc_curve(data, ORIGINAL, ["nope"])
    long = score_tables.long_table([score_tables.compare_table(data)])
    assert list(long.columns) == ["model", "fake_set", "condition", "auc", "delta", "n_fake_images", "real_sets"]
    assert len(long) == 3 * 2  # (2 fake sets + mean) x 2 conditions


def test_cell_images_worst_misses_first(store) -> None:
    url, info = store
    with session_scope(url, readonly=True) as s:
        data = compare.load_scores(s, info["model_id"])
        fake = cell_images(s, model_id=info["model_id"], imageset_id=data.imageset_ids["fake_x"], condition_id=ORIGINAL)
        real = cell_images(
            s, model_id=info["model_id"], imageset_id=data.imageset_ids["real_a"], condition_id=ORIGINAL, limit=5
        )
        with pytest.raises(KeyError, match="no image set"):
            cell_images(s, model_id=1, imageset_id=999, condition_id=ORIGINAL)
    scored = fake["score"].dropna().to_numpy()
    assert (np.diff(scored) >= 0).all()  # fakes: lowest score (worst miss) first
    assert fake["error"].iloc[-1] == "unreadable"  # errors last
    assert len(real) == 5 and (np.diff(real["score"].to_numpy()) <= 0).all()
    assert not fake["has_file"].any() and fake["file"].isna().all()


def test_study_table_in_the_store(sqlite_url: str) -> None:
    with session_scope(sqlite_url) as s:
        import_study(s)
    with session_scope(sqlite_url, readonly=True) as s:
        models = {m.name: m for m in compare.models_with_predictions(s)}
        spai = compare.load_scores(s, models["SPAI (official weights, study)"].id)
    table = score_tables.compare_table(spai)
    assert table.real_sets == ["coco", "fodb", "imagenet", "openimages"]
    assert table.values.loc[score_tables.MEAN_ROW, ORIGINAL] == pytest.approx(0.919, abs=5e-4)
    assert table.values.loc[score_tables.MEAN_ROW, "screenshot"] == pytest.approx(0.623, abs=5e-4)
    dispose_all()


def test_auc_matrix_equals_pairwise_auc() -> None:
    rng = np.random.default_rng(11)
    fakes = [rng.integers(0, 20, n).astype(np.float32) / 20 for n in (7, 30)]  # many ties
    reals = [rng.integers(0, 15, n).astype(np.float32) / 20 for n in (12, 5, 9)]
    m = auc_matrix(fakes, reals)
    for i, f in enumerate(fakes):
        for j, r in enumerate(reals):
            assert m[i, j] == pytest.approx(auc(np.r_[np.ones(f.size), np.zeros(r.size)], np.r_[f, r]), abs=1e-12)
