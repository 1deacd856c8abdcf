"""How good and how safe is one feature: per-month single-feature quality, drift, correlation, leakage checks.

`evaluate_feature` measures a definition (or a stored feature by name) on every row; `preview_feature` computes
it on the newest rows only, fast enough to try while typing; `try_in_challenger` trains the model with and
without it on the same time split and bootstraps the difference in test PR-AUC.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudlab.errors import FeatureDefError
from fraudlab.featurelab.defs import FeatureDef, check_definition, parse_delay, parse_window
from fraudlab.featurelab.sql import relation_sql
from fraudlab.featurelab.store import get_definition, source_columns, taken_names
from fraudlab.features import LEAKAGE_AUC, feature_columns, feature_info
from fraudlab.labels import resolved_sql
from fraudlab.model import train_model
from fraudlab.schema import LABEL_DERIVED
from fraudlab.workspace import Workspace, quote_ident

SHUFFLE_SAMPLE = 20_000
CORRELATION_SAMPLE = 50_000
BINS = 10
LABELS_SQL = f"SELECT transaction_id, label FROM ({resolved_sql(None)})"


@dataclass(frozen=True)
class LeakageCheck:
    """One leakage check: its name, whether the feature passed, and why."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class FeatureEvaluation:
    """A feature's quality per month, coverage, information value, drift, closest features and leakage verdicts."""

    name: str
    rows: int
    coverage: float  # share of rows with a value, 0-1
    nulls: int
    information_value: float
    psi_first_last_month: float | None
    per_month: pd.DataFrame  # month, rows, frauds, pr_auc, roc_auc, information_value, coverage
    correlations: pd.DataFrame  # feature, correlation (top 5 by absolute value)
    distribution: pd.DataFrame  # bin, low, high, fraud share, legitimate share (for a chart)
    leakage: list[LeakageCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def leaks(self) -> bool:
        """True when any leakage check failed."""
        return not all(c.passed for c in self.leakage)


@dataclass(frozen=True)
class FeaturePreview:
    """A feature computed on the newest rows: the values (with labels), a summary and how long it took."""

    name: str
    values: pd.DataFrame  # transaction_id, ts, value, label
    coverage: float
    pr_auc: float | None
    roc_auc: float | None
    seconds: float


@dataclass(frozen=True)
class ChallengerTrial:
    """Test PR-AUC of the model without and with the feature (same split) and a bootstrap interval of the gain."""

    name: str
    pr_auc_without: float
    pr_auc_with: float
    difference: float
    low: float  # 2.5% bootstrap quantile of (with - without)
    high: float  # 97.5%
    test_rows: int


def _resolve(ws: Workspace, name_or_defn: str | FeatureDef) -> tuple[FeatureDef, bool]:
    """The checked definition, and whether its column is already in `features`."""
    if isinstance(name_or_defn, str):
        return get_definition(ws, name_or_defn), True
    cur = ws.cursor()
    try:
        return check_definition(name_or_defn, source_columns(cur)), False
    finally:
        cur.close()


def _values(ws: Workspace, defn: FeatureDef, stored: bool, where: str = "", params: dict | None = None,
            source: str = "transactions") -> pd.DataFrame:
    """transaction_id, ts, value, label (NULL when unlabelled) of every row (or those `where` keeps)."""
    cols = ws.columns("transactions")
    rel = (f"SELECT transaction_id, {quote_ident(defn.name)} FROM features" if stored
           else relation_sql(defn, cols, source))
    cte = f"WITH {source} AS (SELECT * FROM transactions WHERE ts >= $lo) " if source != "transactions" else ""
    try:
        return ws.df(f"""{cte}SELECT t.transaction_id, t.ts, v.{quote_ident(defn.name)}::DOUBLE AS value, l.label
                        FROM ({rel}) v JOIN transactions t USING (transaction_id)
                        LEFT JOIN ({LABELS_SQL}) l USING (transaction_id) {where} ORDER BY t.ts""", params or {})
    except duckdb.Error as exc:
        raise FeatureDefError(f"feature {defn.name!r} does not compute: {str(exc).splitlines()[0]}") from exc


def _scores(values: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Single-feature PR-AUC and ROC-AUC, oriented so higher means fraud, missing values lowest."""
    if y.all() or not y.any():
        return None, None
    x = np.where(np.isfinite(values), values, np.nanmin(values) - 1 if np.isfinite(values).any() else 0.0)
    roc = float(roc_auc_score(y, x))
    x = x if roc >= 0.5 else -x
    return float(average_precision_score(y, x)), max(roc, 1 - roc)


def _bins(reference: np.ndarray) -> np.ndarray:
    finite = reference[np.isfinite(reference)]
    return np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1))[1:-1]) if len(finite) else np.array([])


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value (a last extra bin for missing values)."""
    return np.where(np.isfinite(values), np.searchsorted(edges, values, side="right"), len(edges) + 1)


def information_value(values: np.ndarray, y: np.ndarray) -> float:
    """Information value of decile bins (missing values a bin of their own): < 0.02 useless, > 0.3 strong."""
    if y.all() or not y.any():
        return 0.0
    idx = _bin_index(values, _bins(values))
    bad, good = np.bincount(idx[y], minlength=idx.max() + 1), np.bincount(idx[~y], minlength=idx.max() + 1)
    used = (bad + good) > 0  # empty bins say nothing; +0.5 keeps a bin with no fraud (or no legitimate) finite
    bad, good = bad[used] + 0.5, good[used] + 0.5
    pb, pg = bad / bad.sum(), good / good.sum()
    return float(((pb - pg) * np.log(pb / pg)).sum())


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of `current` against `reference`'s deciles: > 0.25 is a large shift."""
    edges = _bins(reference)
    n = len(edges) + 2
    ref = np.bincount(_bin_index(reference, edges), minlength=n) + 0.5
    cur = np.bincount(_bin_index(current, edges), minlength=n) + 0.5
    pr, pc = ref / ref.sum(), cur / cur.sum()
    return float(((pc - pr) * np.log(pc / pr)).sum())


def _per_month(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for month, part in frame.groupby(frame["ts"].dt.to_period("M"), sort=True):
        lab = part[part["label"].notna()]
        x, y = lab["value"].to_numpy(float), lab["label"].astype(bool).to_numpy()
        pr, roc = _scores(x, y)
        rows.append({"month": str(month), "rows": len(part), "frauds": int(y.sum()), "pr_auc": pr, "roc_auc": roc,
                     "information_value": information_value(x, y), "coverage": float(part["value"].notna().mean())})
    return pd.DataFrame(rows, columns=["month", "rows", "frauds", "pr_auc", "roc_auc", "information_value",
                                       "coverage"])


def _distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Share of fraud and of legitimate rows in each decile bin of the feature (aggregated for a chart)."""
    lab = frame[frame["label"].notna()]
    x, y = lab["value"].to_numpy(float), lab["label"].astype(bool).to_numpy()
    edges = _bins(x)
    idx = _bin_index(x, edges)
    bounds = np.r_[-np.inf, edges, np.inf]
    out = []
    for b in range(len(edges) + 2):
        label = "missing" if b == len(edges) + 1 else f"{bounds[b]:.4g} to {bounds[b + 1]:.4g}"
        out.append({"bin": label, "fraud": float((idx[y] == b).mean()) if y.any() else 0.0,
                    "legitimate": float((idx[~y] == b).mean()) if (~y).any() else 0.0})
    return pd.DataFrame(out)


def _correlations(ws: Workspace, frame: pd.DataFrame, name: str) -> pd.DataFrame:
    numeric = [c for c in feature_info(ws).get("numeric", []) if c != name]
    if not numeric or not ws.has_table("features"):
        return pd.DataFrame(columns=["feature", "correlation"])
    sample = frame[["transaction_id", "value"]].sample(min(len(frame), CORRELATION_SAMPLE), random_state=0)
    cols = ", ".join(f"f.{quote_ident(c)}::DOUBLE AS {quote_ident(c)}" for c in numeric)
    feats = ws.df(f"SELECT transaction_id, {cols} FROM features f WHERE transaction_id IN (SELECT unnest($ids))",
                  {"ids": sample["transaction_id"].tolist()})
    both = sample.merge(feats, on="transaction_id")
    corr = both[numeric].corrwith(both["value"]).dropna()
    top = corr.reindex(corr.abs().sort_values(ascending=False).index)[:5]
    return pd.DataFrame({"feature": top.index, "correlation": top.to_numpy()})


def future_shuffle_check(ws: Workspace, defn: FeatureDef, sample: int = SHUFFLE_SAMPLE, seed: int = 0) -> LeakageCheck:
    """On the newest `sample` rows: shuffle every column of the rows after the median time; values before must hold."""
    table = ws.arrow("SELECT * FROM (SELECT * FROM transactions ORDER BY ts DESC, transaction_id LIMIT ?) "
                     "ORDER BY ts, transaction_id", [int(sample)]).to_pandas()
    cols = list(table.columns)
    cut = table["ts"].iloc[len(table) // 2]
    after = (table["ts"] >= cut).to_numpy()
    rng = np.random.default_rng(seed)
    shuffled = table.copy()
    for col in cols:
        if col not in ("transaction_id", "ts"):
            shuffled.loc[after, col] = rng.permutation(table.loc[after, col].to_numpy())
    results = []
    for frame in (table, shuffled):
        with duckdb.connect() as con:
            con.register("_rows", frame)
            con.execute("CREATE TABLE transactions AS SELECT * FROM _rows")
            results.append(con.execute(f"SELECT * FROM ({relation_sql(defn, cols)}) ORDER BY transaction_id").df())
    before = set(table.loc[~after, "transaction_id"])
    a, b = (r[r["transaction_id"].isin(before)][defn.name].to_numpy(float) for r in results)
    same = np.allclose(a, b, equal_nan=True, rtol=1e-9, atol=1e-9)
    return LeakageCheck("future shuffle", bool(same),
                        f"{len(before):,} rows before {cut}: values {'unchanged' if same else 'CHANGED'} when every "
                        f"column of the {int(after.sum()):,} later rows was shuffled")


def evaluate_feature(ws: Workspace, name_or_defn: str | FeatureDef) -> FeatureEvaluation:
    """Per-month single-feature PR-AUC / ROC-AUC / IV, coverage, PSI first vs last month, correlations, leakage."""
    began = time.perf_counter()
    defn, stored = _resolve(ws, name_or_defn)
    frame = _values(ws, defn, stored)
    lab = frame[frame["label"].notna()]
    x, y = lab["value"].to_numpy(float), lab["label"].astype(bool).to_numpy()
    per_month = _per_month(frame)
    months = frame["ts"].dt.to_period("M")
    first, last = months.min(), months.max()
    drift = (psi(frame.loc[months == first, "value"].to_numpy(float), frame.loc[months == last, "value"].to_numpy(float))
             if first != last else None)
    _, auc = _scores(x, y)
    checks = [LeakageCheck("name", not LABEL_DERIVED.search(defn.name),
                           "the name looks derived from the label" if LABEL_DERIVED.search(defn.name)
                           else "the name does not look derived from the label"),
              LeakageCheck("single-column AUC", auc is None or auc <= LEAKAGE_AUC,
                           "no labels to measure" if auc is None else
                           f"alone it reaches ROC-AUC {auc:.3f} (over {LEAKAGE_AUC} means it likely copies the label)"),
              future_shuffle_check(ws, defn)]
    return FeatureEvaluation(defn.name, len(frame), float(frame["value"].notna().mean()),
                             int(frame["value"].isna().sum()), information_value(x, y), drift, per_month,
                             _correlations(ws, frame, defn.name), _distribution(frame), checks,
                             time.perf_counter() - began)


def preview_feature(ws: Workspace, defn: FeatureDef, rows: int = 50_000) -> FeaturePreview:
    """The feature on the newest `rows` transactions, reading only the history its window needs (fast)."""
    began = time.perf_counter()
    defn, _ = _resolve(ws, defn)
    cut = ws.scalar("SELECT min(ts) FROM (SELECT ts FROM transactions ORDER BY ts DESC LIMIT ?)", [int(rows)])
    window = parse_window(defn.window)
    lo = (cut - pd.Timedelta(seconds=window + parse_delay(defn.delay)) if window is not None and cut is not None
          else pd.Timestamp.min)
    frame = _values(ws, defn, False, "WHERE t.ts >= $cut", {"cut": cut, "lo": lo}, source="_recent")
    lab = frame[frame["label"].notna()]
    pr, roc = _scores(lab["value"].to_numpy(float), lab["label"].astype(bool).to_numpy())
    return FeaturePreview(defn.name, frame, float(frame["value"].notna().mean()) if len(frame) else 0.0, pr, roc,
                          time.perf_counter() - began)


def _bootstrap(y: np.ndarray, without: np.ndarray, with_: np.ndarray, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        if y[i].any() and not y[i].all():
            out.append(average_precision_score(y[i], with_[i]) - average_precision_score(y[i], without[i]))
    return np.asarray(out)


def try_in_challenger(ws: Workspace, name_or_defn: str | FeatureDef, draws: int = 200,
                      seed: int = 0) -> ChallengerTrial:
    """Train with and without the feature (same time split, no refit); test PR-AUCs and a 95% interval of the gain."""
    defn, stored = _resolve(ws, name_or_defn)
    base = [c for c in feature_columns(ws) if c != defn.name]
    extra = None
    if not stored:
        cur = ws.cursor()
        try:
            if defn.name in taken_names(cur):
                raise FeatureDefError(f"a feature named {defn.name!r} already exists: choose another name")
        finally:
            cur.close()
        extra = _values(ws, defn, False)[["transaction_id", "value"]].rename(columns={"value": defn.name})
    without = train_model(ws, refit=False, features=base)
    with_ = train_model(ws, refit=False, features=base + [defn.name], extra=extra)
    a, b = without.test_predictions, with_.test_predictions
    y = a["label"].astype(bool).to_numpy()
    diffs = _bootstrap(y, a["score"].to_numpy(), b["score"].to_numpy(), draws, seed)
    pa_, pb_ = without.metrics.get("pr_auc", float("nan")), with_.metrics.get("pr_auc", float("nan"))
    low, high = (np.quantile(diffs, [0.025, 0.975]) if len(diffs) else (float("nan"), float("nan")))
    return ChallengerTrial(defn.name, float(pa_), float(pb_), float(pb_ - pa_), float(low), float(high), len(y))
