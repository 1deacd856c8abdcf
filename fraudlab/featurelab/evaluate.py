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
import pyarrow as pa
from sklearn.metrics import average_precision_score

from fraudlab.errors import FeatureDefError
from fraudlab.featurelab.defs import FeatureDef, check_definition, parse_delay, parse_window
from fraudlab.featurelab.metrics import bin_index, bins, fill_missing, information_value, psi, scores, scores_sorted
from fraudlab.featurelab.sql import relation_sql
from fraudlab.featurelab.store import get_definition, source_columns, taken_names
from fraudlab.features import feature_columns, feature_info
from fraudlab.labels import resolved_sql
from fraudlab.leakage import LEAKAGE_AUC
from fraudlab.model import train_model
from fraudlab.schema import LABEL_DERIVED
from fraudlab.workspace import Workspace, quote_ident

SHUFFLE_SAMPLE = 20_000
CORRELATION_SAMPLE = 50_000  # correlations use a random sample of about this many rows (r within ~0.005)
LABELS_SQL = f"SELECT transaction_id, label FROM ({resolved_sql(None)})"  # previews: few rows


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
    correlation_rows: int = 0  # correlations come from a random sample of this many rows; the rest uses every row
    correlation_how: str = ""  # how that sample was drawn

    @property
    def sampling_note(self) -> str:
        """Which numbers come from a sample, and how large."""
        return (f"Coverage, distribution, information value, PSI and per-month AUCs use all {self.rows:,} rows; "
                f"correlations use a random sample of {self.correlation_rows:,} rows with a value{self.correlation_how}; "
                f"the future-shuffle check uses the newest {SHUFFLE_SAMPLE:,} rows.")

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
    rel, cte = _relation(ws, defn, stored, source)
    try:
        return ws.df(f"""{cte}SELECT t.transaction_id, t.ts, v.{quote_ident(defn.name)}::DOUBLE AS value, l.label
                        FROM ({rel}) v JOIN transactions t USING (transaction_id)
                        LEFT JOIN ({LABELS_SQL}) l USING (transaction_id) {where} ORDER BY t.ts""", params or {})
    except duckdb.Error as exc:
        raise FeatureDefError(f"feature {defn.name!r} does not compute: {str(exc).splitlines()[0]}") from exc


def _relation(ws: Workspace, defn: FeatureDef, stored: bool, source: str = "transactions") -> tuple[str, str]:
    """SQL of (transaction_id, <name>) for the definition, and the CTE a `source` other than transactions needs."""
    rel = (f"SELECT transaction_id, {quote_ident(defn.name)} FROM features" if stored
           else relation_sql(defn, ws.columns("transactions"), source))
    cte = f"WITH {source} AS (SELECT * FROM transactions WHERE ts >= $lo) " if source != "transactions" else ""
    return rel, cte


def _arrays(ws: Workspace, defn: FeatureDef, stored: bool) -> dict[str, np.ndarray]:
    """Every row as NumPy, in value order (missing first): month (year*12+month-1), value (NaN when missing), label
    (-1 unlabelled, 0, 1), and the transaction ids of a uniform hash sample of at most about CORRELATION_SAMPLE rows
    for a new definition. DuckDB's parallel sort costs a fraction of a NumPy argsort of the same rows.

    Labels are joined row by row (no grouping of the whole `labels` table); only transactions with more than one
    label row are resolved with the full rule afterwards, which gives the same labels at a fraction of the cost."""
    rel, _ = _relation(ws, defn, stored)
    every = max(1, -(-int(ws.scalar("SELECT count(*) FROM transactions") or 0) // CORRELATION_SAMPLE))
    # a stored feature samples `features` directly (see _correlations): no ids needed
    sample = "NULL::VARCHAR" if stored else "CASE WHEN hash(t.transaction_id) % $every = 0 THEN t.transaction_id END"
    try:
        table = ws.arrow(f"""SELECT t.rowid AS row_at, (year(t.ts) * 12 + month(t.ts) - 1)::INTEGER AS month,
                                    coalesce(v.{quote_ident(defn.name)}::DOUBLE, 'NaN'::DOUBLE) AS value,
                                    coalesce(l.is_fraud::TINYINT, -1::TINYINT) AS label,
                                    {sample} AS sample_id
                             FROM ({rel}) v JOIN transactions t USING (transaction_id)
                             LEFT JOIN labels l USING (transaction_id)
                             ORDER BY isfinite(value), value""", {} if stored else {"every": every})
    except duckdb.Error as exc:
        raise FeatureDefError(f"feature {defn.name!r} does not compute: {str(exc).splitlines()[0]}") from exc
    out = {c: table.column(c).to_numpy() for c in ("row_at", "month", "value", "label")}
    keep = _resolve_repeated_labels(ws, out)
    ids = table.column("sample_id")
    if keep is not None:
        ids = ids.filter(pa.array(keep))
    valid = ids.is_valid().to_numpy(zero_copy_only=False)
    out["sample_id"], out["sample_value"] = np.asarray(ids.drop_null().to_pylist(), dtype=object), out["value"][valid]
    out["every"] = np.asarray(every)
    return out


def _resolve_repeated_labels(ws: Workspace, out: dict[str, np.ndarray]) -> np.ndarray | None:
    """Where a transaction came back once per label row, keep one row with its resolved label (in place); returns
    the kept-row mask, or None when every transaction had at most one label row."""
    row_at = out.pop("row_at")
    repeated = np.bincount(row_at)[row_at] > 1 if len(row_at) else np.zeros(0, bool)
    if not repeated.any():
        return None
    rows = np.unique(row_at[repeated])
    cur = ws.cursor()
    try:
        cur.register("_ev_repeated", pa.table({"row_at": pa.array(rows, pa.int64())}))
        resolved = cur.sql(f"""WITH ids AS (SELECT t.rowid AS row_at, t.transaction_id FROM transactions t
                                            WHERE t.rowid IN (SELECT row_at FROM _ev_repeated)),
                                    few AS (SELECT * FROM labels WHERE transaction_id IN (SELECT transaction_id FROM ids))
                               SELECT ids.row_at, r.label::TINYINT AS label
                               FROM ids JOIN ({resolved_sql(None, "few")}) r USING (transaction_id)""").fetchnumpy()
    finally:
        cur.close()
    first = np.ones(len(row_at), bool)
    order = np.flatnonzero(repeated)
    _, firsts = np.unique(row_at[order], return_index=True)
    first[order] = False
    first[order[firsts]] = True
    known, label = resolved["row_at"], resolved["label"]
    known, label = known[np.argsort(known)], label[np.argsort(known)]
    at = np.minimum(np.searchsorted(known, row_at[order]), max(len(known) - 1, 0))
    out["label"] = out["label"].copy()
    out["label"][order] = (np.where(known[at] == row_at[order], label[at], -1) if len(known) else -1)
    for name in ("month", "value", "label"):
        out[name] = out[name][first]
    return first


_scores = scores  # single-feature PR-AUC and ROC-AUC (the preview uses it)


def _per_month(month: np.ndarray, value: np.ndarray, label: np.ndarray,
               value_sorted: bool = False) -> tuple[pd.DataFrame, tuple[float | None, float | None]]:
    """Exact per-month rows, frauds, PR-AUC, ROC-AUC, IV and coverage, and the AUCs over all labelled rows.

    One value order (given, or one sort) serves every month and the overall AUCs (tied values form one threshold,
    so their order does not matter); a stable radix sort of the month offsets groups the labelled rows by month
    without losing that order; rows and coverage are bincounts over the month number."""
    filled = fill_missing(value)
    order = np.arange(len(filled)) if value_sorted else np.argsort(filled, kind="stable")
    order = order[label[order] >= 0]  # labelled rows in value order
    xs, vs, ys = filled[order], value[order], label[order] == 1
    first = int(month.min()) if len(month) else 0
    counts = np.bincount(month - first)
    present = np.bincount(month - first, weights=np.isfinite(value))
    offset = month[order] - first
    by_month = np.argsort(offset.astype(np.int16 if len(counts) < 2**15 else np.int64), kind="stable")
    labelled = np.bincount(offset, minlength=len(counts))
    ends = np.cumsum(labelled)
    xm, vm, ym = xs[by_month], vs[by_month], ys[by_month]
    rows = []
    for i in np.flatnonzero(counts):
        m, part = first + i, slice(ends[i] - labelled[i], ends[i])
        pr, roc = scores_sorted(xm[part], ym[part])
        rows.append({"month": f"{m // 12}-{m % 12 + 1:02d}", "rows": int(counts[i]), "frauds": int(ym[part].sum()),
                     "pr_auc": pr, "roc_auc": roc, "information_value": information_value(vm[part], ym[part]),
                     "coverage": float(present[i] / counts[i])})
    return pd.DataFrame(rows, columns=["month", "rows", "frauds", "pr_auc", "roc_auc", "information_value",
                                       "coverage"]), scores_sorted(xs, ys)


def _distribution(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Share of fraud and of legitimate rows in each decile bin of the feature (aggregated for a chart)."""
    edges = bins(x)
    n = len(edges) + 2
    idx = bin_index(x, edges)
    bad, good = np.bincount(idx[y], minlength=n), np.bincount(idx[~y], minlength=n)
    bounds = np.r_[-np.inf, edges, np.inf]
    out = []
    for b in range(n):
        label = "missing" if b == n - 1 else f"{bounds[b]:.4g} to {bounds[b + 1]:.4g}"
        out.append({"bin": label, "fraud": float(bad[b] / bad.sum()) if bad.sum() else 0.0,
                    "legitimate": float(good[b] / good.sum()) if good.sum() else 0.0})
    return pd.DataFrame(out)


def _correlations(ws: Workspace, arr: dict[str, np.ndarray], name: str, stored: bool) -> tuple[pd.DataFrame, int]:
    """Top 5 Pearson correlations with the stored numeric features on a sample (and the sample's size).

    A stored feature reads random 2,048-row blocks of `features` (DuckDB system sampling reads only those); a new
    definition joins its hash-sampled rows, with the same hash filter on `features` so DuckDB skips the others."""
    numeric = [c for c in feature_info(ws).get("numeric", []) if c != name]
    empty = pd.DataFrame(columns=["feature", "correlation"])
    if not numeric or not ws.has_table("features") or not len(arr["value"]):
        return empty, 0
    cols = ", ".join(f"f.{quote_ident(c)}::DOUBLE AS {quote_ident(c)}" for c in numeric)
    if stored:
        share = min(100.0, 100.0 * CORRELATION_SAMPLE / len(arr["value"]))
        table = ws.arrow(f"SELECT * FROM (SELECT f.{quote_ident(name)}::DOUBLE AS _value, {cols} FROM features f "
                         f"USING SAMPLE {share:.6f} PERCENT (system, 7)) WHERE isfinite(_value)")
    else:
        sample = pa.table({"transaction_id": pa.array(arr["sample_id"], pa.string()),
                           "value": pa.array(arr["sample_value"], pa.float64())})
        cur = ws.cursor()
        try:
            cur.register("_ev_sample", sample)
            table = cur.sql(f"SELECT s.value AS _value, {cols} FROM features f JOIN _ev_sample s USING (transaction_id) "
                            "WHERE isfinite(s.value) AND hash(f.transaction_id) % $every = 0",
                            params={"every": int(arr["every"])}).to_arrow_table()
        finally:
            cur.close()
    v = table.column("_value").to_numpy()
    corr = pd.Series({c: _pearson(table.column(c).to_numpy(zero_copy_only=False), v) for c in numeric},
                     dtype=float).dropna()
    top = corr.reindex(corr.abs().sort_values(ascending=False).index)[:5]
    return pd.DataFrame({"feature": top.index, "correlation": top.to_numpy()}), len(v)


def _sample_how(stored: bool) -> str:
    """How the correlation sample was drawn, for the note."""
    return " (whole random blocks of 2,048 rows)" if stored else " (a hash of the transaction id picks them)"


def _pearson(a: np.ndarray, v: np.ndarray) -> float:
    """Pearson correlation over the rows where both are finite (NaN when either is constant)."""
    ok = np.isfinite(a) & np.isfinite(v)
    if ok.sum() < 3:
        return float("nan")
    x, y = a[ok] - a[ok].mean(), v[ok] - v[ok].mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


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
    arr = _arrays(ws, defn, stored)
    month, value, label = arr["month"], arr["value"], arr["label"]
    lab = label >= 0
    x, y = value[lab], label[lab] == 1
    per_month, (_, auc) = _per_month(month, value, label, value_sorted=True)
    first, last = (int(month.min()), int(month.max())) if len(month) else (0, 0)
    drift = psi(value[month == first], value[month == last]) if first != last else None
    checks = [LeakageCheck("name", not LABEL_DERIVED.search(defn.name),
                           "the name looks derived from the label" if LABEL_DERIVED.search(defn.name)
                           else "the name does not look derived from the label"),
              LeakageCheck("single-column AUC", auc is None or auc <= LEAKAGE_AUC,
                           "no labels to measure" if auc is None else
                           f"alone it reaches ROC-AUC {auc:.3f} (over {LEAKAGE_AUC} means it likely copies the label)"),
              future_shuffle_check(ws, defn)]
    present = np.isfinite(value)
    correlations, corr_rows = _correlations(ws, arr, defn.name, stored)
    return FeatureEvaluation(defn.name, len(value), float(present.mean()) if len(value) else 0.0,
                             int((~present).sum()), information_value(x, y), drift, per_month, correlations,
                             _distribution(x, y), checks, time.perf_counter() - began, corr_rows,
                             _sample_how(stored))


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
