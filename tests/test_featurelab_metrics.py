"""Vectorised single-feature metrics equal scikit-learn's on simulated transactions (ties, missing values, both
orientations), and one value order serves every month."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudlab.featurelab.metrics import fill_missing, scores, scores_sorted
from fraudlab.generate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate(rows=6_000, seed=3, days=60, fraud_rate=0.05).transactions


def _reference(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    x = fill_missing(x)
    roc = roc_auc_score(y, x)
    return average_precision_score(y, x if roc >= 0.5 else -x), max(roc, 1 - roc)


@pytest.mark.parametrize("transform", ["raw", "rounded", "negated", "with_missing", "hour"])
def test_scores_equal_sklearn(sim, transform):
    y = sim["is_fraud"].to_numpy(bool)
    x = sim["amount"].to_numpy(float)
    x = {"raw": x, "rounded": np.round(x, -1), "negated": -x, "hour": sim["ts"].dt.hour.to_numpy(float),
         "with_missing": np.where(np.arange(len(x)) % 7 == 0, np.nan, np.round(x))}[transform]
    pr, roc = scores(x, y)
    ref_pr, ref_roc = _reference(x, y)
    assert roc == pytest.approx(ref_roc, abs=1e-12) and pr == pytest.approx(ref_pr, abs=1e-12)
    assert 0.5 <= roc <= 1 and 0 < pr <= 1


def test_one_value_order_serves_every_month_and_one_class_gives_none(sim):
    y = sim["is_fraud"].to_numpy(bool)
    x = fill_missing(np.round(sim["amount"].to_numpy(float)))
    month = sim["ts"].dt.month.to_numpy()
    order = np.argsort(x, kind="stable")
    checked = 0
    for m in np.unique(month):
        part = order[month[order] == m]
        pr, roc = scores_sorted(x[part], y[part])
        if y[part].all() or not y[part].any():
            assert (pr, roc) == (None, None)
            continue
        checked += 1
        ref_pr, ref_roc = _reference(x[month == m], y[month == m])
        assert (pr, roc) == (pytest.approx(ref_pr, abs=1e-12), pytest.approx(ref_roc, abs=1e-12))
    assert checked >= 2
    assert scores(x, np.zeros(len(x), bool)) == (None, None)


def test_per_month_from_a_given_value_order_equals_sorting_here(sim):
    from fraudlab.featurelab.evaluate import _per_month

    rng = np.random.default_rng(0)
    value = np.where(np.arange(len(sim)) % 5 == 0, np.nan, np.round(sim["amount"].to_numpy(float)))
    label = np.where(rng.random(len(sim)) < 0.2, -1, sim["is_fraud"].to_numpy(np.int8)).astype(np.int8)
    month = (sim["ts"].dt.year * 12 + sim["ts"].dt.month - 1).to_numpy(np.int32)
    shuffled, (pr, roc) = _per_month(month, value, label)
    order = np.lexsort((rng.random(len(value)), fill_missing(value)))  # value order, ties in random order
    given, overall = _per_month(month[order], value[order], label[order], value_sorted=True)
    assert len(given) >= 2 and given.equals(shuffled) and overall == (pr, roc)
    reference = _reference(value[label >= 0], label[label >= 0] == 1)
    assert (pr, roc) == (pytest.approx(reference[0], abs=1e-12), pytest.approx(reference[1], abs=1e-12))
