"""robustness.metrics against scikit-learn on small hand-made cases, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from robustness import metrics as M

# Hand-made cases: heavy exact ties (0.0 / 1.0), all-tied, perfect, inverted.
CASES = [
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]),
    ([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]),
    ([0, 1, 0, 1, 1, 0], [0.0, 0.0, 1.0, 1.0, 1.0, 0.0]),
    ([1, 1, 0, 0, 0], [0.0, 0.0, 1.0, 1.0, 0.5]),
    ([0, 0, 0, 1], [0.2, 0.2, 0.9, 0.2]),
    ([0, 1, 1, 0, 1, 0, 1, 0], [0.3, 0.3, 0.7, 0.7, 0.5, 0.1, 0.9, 0.5]),
    ([1, 0], [1.0, 0.0]),
]


def _tie_heavy(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 60))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes
    s = rng.choice([0.0, 1.0, 0.25, 0.5, 0.75], n)  # few distinct values => many ties
    return y, s


@pytest.mark.parametrize("y, s", CASES)
def test_auc_ap_roc_match_sklearn_hand_cases(y, s):
    assert M.auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.ap(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    fpr, tpr, thr = M.roc_curve_points(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    assert np.isinf(thr[0])


@pytest.mark.parametrize("seed", range(25))
def test_random_tie_heavy_against_sklearn(seed):
    y, s = _tie_heavy(seed)
    assert M.auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.ap(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert M.acc_at(y, s, threshold=0.5) == pytest.approx(skm.accuracy_score(y, s > 0.5))


def test_auc_hand_value_with_tie():
    # 4 pairs: (0.5 fake vs 0.1 real) win, (0.5 vs 0.5) half, (0.9 vs both) win -> 3.5 / 4
    assert M.auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == 0.875


def test_acc_at_uses_strictly_greater():
    y = [0, 1, 1]
    s = [0.5, 0.5, 0.6]
    assert M.acc_at(y, s) == pytest.approx(2 / 3)  # 0.5 is not > 0.5: fake at 0.5 is missed
    assert M.acc_at(y, s, threshold=0.4) == pytest.approx(2 / 3)
    assert M.acc_at(y, s, threshold=0.55) == pytest.approx(2 / 3)
    assert M.acc_at([0, 1], [0.2, 0.9], threshold=0.5) == 1.0


def _sk_tpr_at(y, s, fpr):
    f, t, _ = skm.roc_curve(y, s, drop_intermediate=False)
    return t[f <= fpr].max()


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.2, 0.5])
def test_tpr_at_fpr_matches_sklearn_roc(seed, fpr):
    y, s = _tie_heavy(seed)
    assert M.tpr_at_fpr(y, s, fpr=fpr) == pytest.approx(_sk_tpr_at(y, s, fpr))


def test_tpr_at_fpr_hand_case():
    y = [0] * 10 + [1] * 4
    s = [0.1] * 9 + [0.8] + [0.9, 0.7, 0.85, 0.05]
    # one real at 0.8 => FPR 10% at t=0.8; at FPR 0 only scores > 0.8 count: 0.9, 0.85 -> 2/4
    assert M.tpr_at_fpr(y, s, fpr=0.0) == 0.5
    assert M.tpr_at_fpr(y, s, fpr=0.09) == 0.5  # the real at 0.8 already gives 10%
    assert M.tpr_at_fpr(y, s, fpr=0.1) == 0.75  # t=0.7: FPR stays 10%, 3 of 4 fakes
    assert M.tpr_at_fpr(y, s, fpr=0.5) == 0.75  # next threshold (0.1) gives FPR 100%


def test_threshold_at_fpr():
    real = [0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0]
    assert M.threshold_at_fpr(real, fpr=0.1) == 1.0  # only the 1.0 is >= t
    assert M.threshold_at_fpr(real, fpr=0.3) == 0.6
    assert M.threshold_at_fpr(real, fpr=0.05) == float("inf")
    assert M.threshold_at_fpr(real, fpr=0.85) == 0.1  # ties: 0.0 would give 100%
    for fpr in (0.1, 0.3, 0.85):
        t = M.threshold_at_fpr(real, fpr=fpr)
        assert np.mean(np.array(real) >= t) <= fpr
    with pytest.raises(ValueError, match="fpr must be"):
        M.threshold_at_fpr(real, fpr=1.5)


def test_eer():
    assert M.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert M.eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 1.0
    # all tied: ROC is the diagonal, FPR = FNR at 0.5
    assert M.eer([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.5)
    y, s = [0, 0, 0, 0, 1, 1, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    f, t, _ = skm.roc_curve(y, s, drop_intermediate=False)
    fnr = 1 - t
    i = np.flatnonzero(fnr - f <= 0)[0]
    w = (fnr[i - 1] - f[i - 1]) / ((fnr[i - 1] - f[i - 1]) - (fnr[i] - f[i]))
    assert M.eer(y, s) == pytest.approx(f[i - 1] + w * (f[i] - f[i - 1]))
    assert M.eer(y, s) == pytest.approx(0.25)


def test_bootstrap_ci_deterministic_and_sane():
    y, s = _tie_heavy(3)
    a = M.bootstrap_ci("auc", y, s, n=200, seed=1)
    b = M.bootstrap_ci(M.auc, y, s, n=200, seed=1)
    assert a == b
    assert a.estimate == pytest.approx(skm.roc_auc_score(y, s))
    assert a.low <= a.estimate <= a.high
    narrow = M.bootstrap_ci("auc", y, s, n=200, seed=1, level=0.5)
    assert a.low <= narrow.low <= narrow.high <= a.high
    assert M.bootstrap_ci("auc", y, s, n=200, seed=2) != a


def test_auc_replicates_is_the_auc_of_the_resampled_data_for_any_counts():
    rng = np.random.default_rng(3)
    fake, real = rng.random(30).round(2), rng.random(25).round(2)  # rounding makes ties
    wf, wr = rng.integers(0, 3, (4, 30)).astype(float), rng.integers(0, 3, (4, 25)).astype(float)
    wf[:, 0] += 1
    wr[:, 0] += 1  # every replicate keeps both classes
    got = M.auc_replicates(fake, real, wf, wr)
    for k in range(4):
        f, r = np.repeat(fake, wf[k].astype(int)), np.repeat(real, wr[k].astype(int))
        assert got[k] == pytest.approx(M.auc([1] * f.size + [0] * r.size, np.r_[f, r]), abs=1e-12)
    assert M.auc_replicates(fake, real, np.ones((1, 30)), np.ones((1, 25)))[0] == pytest.approx(
        M.auc([1] * 30 + [0] * 25, np.r_[fake, real]), abs=1e-12
    )


def _sets(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    fakes = [rng.random(n).round(2) + 0.2 for n in (20, 14)]  # rounding makes ties
    reals = [rng.random(n).round(2) for n in (18, 25, 9)]
    return fakes, reals


def test_protocol_replicates_with_unit_counts_is_the_mean_of_every_cell():
    fakes, reals = _sets(0)
    ones = [np.ones((1, x.size)) for x in fakes], [np.ones((1, x.size)) for x in reals]
    got = M.protocol_replicates(fakes, reals, *ones, metric="auc")
    assert got.shape == (1,) and got[0] == pytest.approx(M.auc_matrix(fakes, reals).mean())
    ap = M.protocol_replicates(fakes, reals, *ones, metric="ap")[0]
    want = np.mean(
        [
            skm.average_precision_score(np.r_[np.ones(f.size), np.zeros(r.size)], np.r_[f, r])
            for f in fakes
            for r in reals
        ]
    )
    assert ap == pytest.approx(want)


def test_protocol_replicates_vectorised_auc_equals_the_metric_on_each_resample():
    """The AUC fast path, with and without per-item labels (two fake-set items labelled real,
    one real-set item labelled fake), equals calling the metric on each replicate's rows."""
    fakes, reals = _sets(1)
    rng = np.random.default_rng(2)
    wf = [M.resample_counts(rng, x.size, 7) for x in fakes]
    wr = [M.resample_counts(rng, x.size, 7) for x in reals]
    plain = M.protocol_replicates(fakes, reals, wf, wr, metric="auc")
    slow = M.protocol_replicates(fakes, reals, wf, wr, metric=lambda y, s: M.auc(y, s))
    np.testing.assert_allclose(plain, slow, atol=1e-12)
    fy = [np.ones(x.size, int) for x in fakes]
    ry = [np.zeros(x.size, int) for x in reals]
    fy[0][:2], ry[1][0] = 0, 1
    kw = {"fake_labels": fy, "real_labels": ry}
    labelled = M.protocol_replicates(fakes, reals, wf, wr, metric="auc", **kw)
    slow = M.protocol_replicates(fakes, reals, wf, wr, metric=lambda y, s: M.auc(y, s), **kw)
    np.testing.assert_allclose(labelled, slow, atol=1e-12)
    assert not np.allclose(labelled, plain)  # the labels changed the cells


def test_bootstrap_ci_is_the_protocol_bootstrap_of_one_fake_and_one_real_set():
    y, s = _tie_heavy(5)
    ci = M.bootstrap_ci("ap", y, s, n=50, seed=4)
    rng = np.random.default_rng(4)
    fake, real = s[y == 1], s[y == 0]
    wf, wr = M.resample_counts(rng, fake.size, 50), M.resample_counts(rng, real.size, 50)
    reps = M.protocol_replicates([fake], [real], [wf], [wr], metric="ap")
    assert (ci.low, ci.high) == M.percentile_interval(reps, level=0.95)
    assert M.percentile_interval(np.arange(101.0), level=0.9) == pytest.approx((5.0, 95.0))


def test_metric_registry():
    assert {"auc", "ap", "acc", "tpr@fpr1%", "tpr@fpr5%", "eer"} <= set(M.METRICS)
    assert M.get_metric("eer").higher_is_better is False
    assert M.get_metric("auc").higher_is_better is True
    y, s = _tie_heavy(4)
    assert M.METRICS["tpr@fpr5%"].fn(y, s) == M.tpr_at_fpr(y, s, fpr=0.05)
    with pytest.raises(KeyError, match="Available: acc, ap, auc"):
        M.get_metric("f1")


@pytest.mark.parametrize("fn", [M.auc, M.ap, M.eer])
def test_bad_input_gives_clear_errors(fn):
    with pytest.raises(ValueError, match="differ in length"):
        fn([0, 1], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        fn([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="only 0"):
        fn([0, 2], [0.1, 0.2])
    if fn is not M.ap:
        with pytest.raises(ValueError, match="both classes"):
            fn([1, 1], [0.1, 0.2])


@pytest.mark.parametrize("seed", range(5))
def test_auc_matrix_matches_sklearn_on_every_pair(seed):
    rng = np.random.default_rng(seed)
    fakes = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n).astype(np.float32) for n in (3, 17)]
    reals = [rng.choice([0.0, 0.25, 0.5], n) for n in (5, 1, 9)]  # ties across classes
    m = M.auc_matrix(fakes, reals)
    for i, f in enumerate(fakes):
        for j, r in enumerate(reals):
            y = np.r_[np.ones(f.size), np.zeros(r.size)]
            assert m[i, j] == pytest.approx(skm.roc_auc_score(y, np.r_[f, r]), abs=1e-12)
    with pytest.raises(ValueError, match="non-empty"):
        M.auc_matrix([np.array([])], reals)


def test_one_decision_rule():
    """A score of exactly 0.5 is real (the official code's `preds > threshold`)."""
    assert M.predict_fake([0.5, 0.5000001, 0.2]).tolist() == [False, True, False]
    assert M.predict_fake([0.7], threshold=0.7).tolist() == [False]
    assert M.DECISION_THRESHOLD == 0.5
