"""Feature lab: define a point-in-time feature, preview and evaluate it, try it in a challenger, add it to the feature
set, see how a model that uses it is moved by it, drop it."""
import streamlit as st

from fraudlab import registry
from fraudlab.auth.permissions import can
from fraudlab.charts.featurelab import distribution_figure, per_month_figure
from fraudlab.charts.models import dependence_figure
from fraudlab.errors import FraudlabError
from fraudlab.featurelab import AGGREGATES, KEYS, FeatureDef, add_definition, drop_definition, list_definitions
from fraudlab.featurelab.evaluate import evaluate_feature, preview_feature, try_in_challenger
from fraudlab.global_explain import plain_names, shap_sample, strongest_interaction
from fraudlab.text import markdown_literal
from ui.auth import allowed, me
from ui.cache import read
from ui.state import get_workspace, toast_after_rerun

ws = get_workspace()
st.title("Feature lab")
st.caption("A feature here is computed for every transaction from the same key's earlier transactions only "
           "(never the transaction itself or anything later). With a delay, the window ends that long before the "
           "transaction, so label columns such as is_fraud only count labels that had time to arrive.")

columns = [c for c in ws.columns("transactions") if c != "ingest_id"]
left, mid, right = st.columns(3)
name = left.text_input("Name", "c_online_mean_30d", key="fl_name")
key = left.selectbox("Per (key)", [k for k in KEYS if k in columns] + [c for c in columns if c not in KEYS],
                     key="fl_key")
aggregate = mid.selectbox("Aggregate", AGGREGATES, index=AGGREGATES.index("mean"), key="fl_agg",
                          help="distinct: how many different values; since_last: seconds since the key's previous "
                               "event; ratio / zscore: this transaction against the window's mean; value: a "
                               "row-level expression, no window")
of = mid.selectbox("Of (column)", ["(none)"] + columns, index=columns.index("amount") + 1, key="fl_of")
window = right.text_input("Window (5m, 1h, 7d, 30d or all)", "30d", key="fl_window")
delay = right.text_input("Delay (e.g. 7d; empty for none)", "", key="fl_delay")
where = st.text_input("Only earlier events where (optional)", "channel = 'online'", key="fl_where")
expression = st.text_input("Or an expression instead of the column (optional), e.g. abs(amount - 50)", "",
                           key="fl_expression")
defn = FeatureDef(name, key, aggregate, None if of == "(none)" else of, window, delay or None, where or None,
                  expression or None)
st.caption(f"Definition: {defn.describe()}.")

table = read(list_definitions, ws)
stored = defn.name in set(table["name"]) if not table.empty else False

b1, b2, b3, b4 = st.columns(4)
try:
    if b1.button("Preview on recent rows", key="fl_preview"):
        preview = read(preview_feature, ws, defn)
        st.metric("Coverage (rows with a value)", f"{preview.coverage:.1%}")
        st.caption(f"Newest {len(preview.values):,} rows in {preview.seconds:.2f} s; PR-AUC of the feature alone "
                   f"{'n/a' if preview.pr_auc is None else f'{preview.pr_auc:.3f}'}.")
        st.dataframe(preview.values.tail(200), width="stretch", hide_index=True)
    if b2.button("Evaluate on all rows", key="fl_evaluate"):
        ev = read(evaluate_feature, ws, defn)
        c = st.columns(4)
        c[0].metric("Coverage", f"{ev.coverage:.1%}")
        c[1].metric("Information value", f"{ev.information_value:.3f}")
        c[2].metric("Drift, first vs last month (PSI)",
                    "n/a" if ev.psi_first_last_month is None else f"{ev.psi_first_last_month:.3f}")
        c[3].metric("Leakage checks", "passed" if not ev.leaks else "FAILED")
        st.caption("PR-AUC / ROC-AUC use the feature alone as a score (0-1, higher is better; the fraud rate and 0.5 "
                   "are chance). Information value: under 0.02 useless, over 0.3 strong. PSI over 0.25 is a large "
                   "shift between the first and the last month. " + ev.sampling_note)
        g1, g2 = st.columns(2)
        g1.plotly_chart(distribution_figure(ev.distribution), width="stretch")
        g2.plotly_chart(per_month_figure(ev.per_month), width="stretch")
        for check in ev.leakage:
            (st.success if check.passed else st.error)(f"{check.name}: {'passed' if check.passed else 'failed'} "
                                                       f"({check.detail})")
        st.dataframe(ev.correlations, width="stretch", hide_index=True)
    if can(me(), "train") and b3.button("Try in a challenger", key="fl_try",
                 help="Trains the model twice on the same time split, without and with this feature (a minute or "
                      "more); nothing is registered"):
        with st.spinner("Training the model without and with the feature on the same time split…"):
            trial = read(try_in_challenger, ws, defn.name if stored else defn)
        c = st.columns(3)
        c[0].metric("Test PR-AUC without", f"{trial.pr_auc_without:.3f}")
        c[1].metric("Test PR-AUC with", f"{trial.pr_auc_with:.3f}", delta=f"{trial.difference:+.3f}")
        c[2].metric("Lift, 95% interval", f"{trial.low:+.3f} to {trial.high:+.3f}")
        verdict = ("it helps: the whole interval is above zero" if trial.low > 0 else
                   "it hurts: the whole interval is below zero" if trial.high < 0 else
                   "not clearly better or worse: the interval includes zero")
        st.caption(f"On {trial.test_rows:,} test-period payments (PR-AUC 0-1, higher is better); the interval comes "
                   f"from resampling those payments. Verdict: {verdict}.")
    if can(me(), "edit_features") and b4.button("Add to the feature set", type="primary", key="fl_add"):
        added = add_definition(ws, defn, me())
        st.success(f"Added {added.name}; the next model trained uses it.")
except FraudlabError as exc:
    st.error(str(exc))

if stored:
    st.subheader(f"How a model uses {markdown_literal(defn.name)}")
    models = read(registry.list_models, ws)
    holder = next((r for r in (read(registry.get_model, ws, m) for m in models["model_id"])
                   if defn.name in r.features), None)
    if holder is None:
        st.caption("No model uses it yet: train a challenger on the Models page, then its effect shows here.")
    else:
        with st.spinner("Computing SHAP values…"):
            explanation = read(shap_sample, ws, holder.model_id, key=holder.model_id)
        label = plain_names(list(holder.features))[holder.features.index(defn.name)]
        partner = strongest_interaction(explanation, label) if len(holder.features) > 1 else None
        st.plotly_chart(dependence_figure(explanation, label, partner), width="stretch", key="fl_dependence")
        st.caption(f"Model {holder.model_id} ({holder.status}), on its test-period payments.")

st.subheader("Your features")
table = read(list_definitions, ws)
if table.empty:
    st.info("No user-defined feature yet.")
else:
    st.dataframe(table[["name", "version", "describes", "created_by", "created_at"]], width="stretch",
                 hide_index=True)
    drop = st.selectbox("Feature to drop", table["name"].tolist(), key="fl_drop_name")
    if allowed("edit_features", "drop features") and st.button("Drop it", key="fl_drop"):
        try:
            version = drop_definition(ws, drop, me())
            toast_after_rerun(f"Dropped {drop} (feature-set version {version}).")
            st.rerun()
        except FraudlabError as exc:
            st.error(str(exc))
