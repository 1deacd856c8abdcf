"""Column weights from the champion and multivariate checks (domain classifier, PCA reconstruction)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fraudlab.drift.columns import ColumnSpec, from_sql
from fraudlab.drift.settings import DOMAIN_AUC, DOMAIN_SAMPLE, PCA_VARIANCE
from fraudlab.drift.windows import Window
from fraudlab.workspace import Workspace, quote_ident


def column_weights(ws: Workspace, specs: list[ColumnSpec]) -> tuple[dict[str, float], str]:
    """Weights of the columns in the dataset verdict: the champion's mean |SHAP| if any, else equal."""
    imp: dict[str, float] = {}
    try:
        from fraudlab import registry
        current = registry.champion(ws)
        if current:
            frame = registry.importance(ws, current.model_id)
            imp = dict(zip(frame["feature"], frame["mean_abs_shap"].astype(float)))
    except Exception:  # no registry, no model files or no features: equal weights
        imp = {}
    if not imp or not any(v > 0 for v in imp.values()):
        return {s.name: 1.0 for s in specs}, "equal weights"
    top = max(imp.values())
    scaled = {k: v / top for k, v in imp.items()}
    fallback = float(np.median(list(scaled.values())))
    return {s.name: scaled.get(s.name, fallback) for s in specs}, "champion feature importance (mean |SHAP|)"


def _sample(ws: Workspace, window: Window, specs: list[ColumnSpec], rows: int, seed: int) -> pd.DataFrame:
    where, params = window.where("t")
    sel = ", ".join(f"{s.expr()} AS {quote_ident(s.name)}" for s in specs)
    sql = (f"SELECT * FROM (SELECT t.ts, {sel} FROM {from_sql({s.source for s in specs})} WHERE {where}) "
           f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})")
    return ws.df(sql, params)


def multivariate(ws: Workspace, reference: Window, current: Window, specs: list[ColumnSpec], period: str,
                 sample_rows: int = DOMAIN_SAMPLE, seed: int = 42) -> dict:
    """Domain classifier (XGBoost, 3-fold AUC, top separating features by SHAP) and PCA error per period."""
    import xgboost as xgb
    from sklearn.decomposition import PCA
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    use = [s for s in specs if s.kind in ("numeric", "categorical") and s.source != "scores"]
    if not use:
        return {}
    ref, cur = _sample(ws, reference, use, sample_rows, seed), _sample(ws, current, use, sample_rows, seed + 1)
    if len(ref) < 50 or len(cur) < 50:
        return {"note": "too few rows for multivariate checks"}
    both = pd.concat([ref, cur], ignore_index=True)
    use = [s for s in use if both[s.name].nunique(dropna=True) > 1]  # all-null or constant: nothing to separate
    if not use:
        return {"note": "no column varies in the sampled rows"}
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    X = both[[s.name for s in use]].copy()
    for s in use:
        if s.kind == "categorical":
            X[s.name] = X[s.name].astype("category")
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "tree_method": "hist", "nthread": 2,
              "seed": seed, "max_cat_to_onehot": 1, "max_bin": 64, "subsample": 0.8}
    aucs = []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y):
        b = xgb.train(params, xgb.DMatrix(X.iloc[tr], y[tr], enable_categorical=True), 30)
        aucs.append(roc_auc_score(y[te], b.predict(xgb.DMatrix(X.iloc[te], enable_categorical=True))))
    booster = xgb.train(params, xgb.DMatrix(X, y, enable_categorical=True), 30)
    pick = np.random.default_rng(seed).choice(len(X), size=min(len(X), 4_000), replace=False)
    contribs = booster.predict(xgb.DMatrix(X.iloc[pick], enable_categorical=True), pred_contribs=True)[:, :-1]
    sep = (pd.DataFrame({"feature": [s.name for s in use], "mean_abs_shap": np.abs(contribs).mean(axis=0)})
           .sort_values("mean_abs_shap", ascending=False, ignore_index=True))
    auc = float(np.mean(aucs))
    out = {"domain_auc": auc, "domain_auc_folds": [float(a) for a in aucs], "domain_drift": auc >= DOMAIN_AUC,
           "separating": sep.head(8).to_dict("records"), "sample_rows": [len(ref), len(cur)]}
    numeric = [s.name for s in use if s.kind == "numeric"]
    if len(numeric) >= 2:
        r = ref[numeric].astype(float)
        med, mu, sd = r.median(), r.mean(), r.std(ddof=0).replace(0, 1).fillna(1)

        def prep(frame: pd.DataFrame) -> np.ndarray:
            z = ((frame[numeric].astype(float).fillna(med) - mu) / sd).fillna(0.0).to_numpy()
            return np.clip(z, -50, 50)
        pca = PCA(n_components=PCA_VARIANCE, svd_solver="full", random_state=seed).fit(prep(ref))

        def error(frame: pd.DataFrame) -> np.ndarray:
            z = prep(frame)
            return np.sqrt(((z - pca.inverse_transform(pca.transform(z))) ** 2).sum(axis=1))
        per = []
        for name, frame in (("reference", ref), ("current", cur)):
            e = pd.DataFrame({"period": pd.to_datetime(frame["ts"]).dt.floor("h" if period == "hour" else "D"),
                              "error": error(frame)})
            if period == "week":
                e["period"] = pd.to_datetime(frame["ts"]).dt.to_period("W-SUN").dt.start_time
            g = e.groupby("period")["error"].agg(["mean", "size"]).reset_index()
            g["window"] = name
            per.append(g[g["size"] >= 20])
        pcs = pd.concat(per, ignore_index=True).rename(columns={"mean": "error", "size": "rows"})
        refe = pcs.loc[pcs["window"] == "reference", "error"]
        upper = float(refe.mean() + 3 * refe.std(ddof=1)) if len(refe) > 2 else float("inf")
        pcs["upper"] = upper
        pcs["alert"] = (pcs["window"] == "current") & (pcs["error"] > upper)
        cur_alert = pcs.loc[pcs["window"] == "current", "alert"]
        out.update(pca_components=int(pca.n_components_), pca=pcs,
                   pca_alert_share=float(cur_alert.mean()) if len(cur_alert) else 0.0)
    return out
