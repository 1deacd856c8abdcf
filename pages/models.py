"""Models: metrics and curves of each model, the cost threshold, what drives the score, registry actions."""
import pandas as pd
import streamlit as st

from fraudlab import overrides, pipeline, registry
from fraudlab.charts.models import (
    beeswarm_figure,
    cost_curve_figure,
    dependence_figure,
    importance_figure,
    pr_curve_figure,
    roc_curve_figure,
)
from fraudlab.errors import FraudlabError
from fraudlab.evaluation import list_evaluations
from fraudlab.features import feature_info
from fraudlab.global_explain import by_importance, shap_sample, strongest_interaction
from fraudlab.model import cost_at, cost_table, nearest, threshold_choices
from fraudlab.names import plain_name
from fraudlab.scoring import recent_fallbacks
from fraudlab.text import markdown_literal
from ui import cases as ui_cases
from ui.auth import allowed, me
from ui.cache import read
from ui.state import get_workspace


def _shap_views(ws, record, model_id: str, champ) -> None:
    """The beeswarm of the selected model (beside the champion's) and a dependence plot of a picked feature."""
    with st.spinner("Computing SHAP values…"):
        explanation = read(shap_sample, ws, model_id, key=model_id)
    st.caption("Each dot is one test-period payment: how far that feature moved its score (right raises the risk, in "
               "log-odds), coloured by the feature's value from low (blue) to high (red) across its usual range; grey "
               "means the value was missing.")
    if record.status != "champion" and len(champ):
        with st.spinner("Computing the champion's SHAP values…"):
            champion_explanation = read(shap_sample, ws, champ.iloc[0], key=champ.iloc[0])
        b1, b2 = st.columns(2)
        b1.plotly_chart(beeswarm_figure(champion_explanation, title=f"Champion {champ.iloc[0]}"), width="stretch",
                        key="beeswarm_champion")
        b2.plotly_chart(beeswarm_figure(explanation, title=f"{record.status.capitalize()} {model_id}"), width="stretch",
                        key="beeswarm_selected")
    else:
        st.plotly_chart(beeswarm_figure(explanation), width="stretch", key="beeswarm_selected")
    ranked = by_importance(explanation)
    picked = st.selectbox("Feature to look at", ranked, index=0, key=f"dependence_{model_id}",
                          help="Features in order of how much they move the score")
    partner = strongest_interaction(explanation, picked) if len(ranked) > 1 else None
    st.plotly_chart(dependence_figure(explanation, picked, partner), width="stretch", key="dependence")
    if partner:
        st.caption(f"Coloured by {markdown_literal(partner)}: the feature that most changes how "
                   f"{markdown_literal(picked)} moves the score.")


ws = get_workspace()
st.title("Models")

table = read(registry.list_models, ws)
if table.empty:
    st.info("No model yet. Load labelled transactions, then train the first one here.")

with st.expander("Train a new challenger", expanded=table.empty):
    left, right = st.columns(2)
    search = left.checkbox("Small hyper-parameter search (3 settings)")
    rebuild = right.checkbox("Rebuild features first", value=table.empty)
    delay = right.number_input("Assumed label delay when the data has no label time (days)", 0.0, 120.0, 7.0)
    if allowed("train", "train models") and st.button("Train challenger", type="primary"):
        bar = st.progress(0.0, text="starting")
        try:
            outcome = pipeline.retrain(ws, search=search, rebuild_features=rebuild, label_delay_days=delay,
                                       who=me(), progress=lambda f, m: bar.progress(f, text=m))
            result = outcome.result
            # a message kept for the rerun: a toast sent right before st.rerun() may never reach the browser
            st.session_state["models_flash"] = {
                "ok": True, "checks": [], "message": f"Trained {outcome.model_id} in {result.seconds:.1f} s "
                                                     f"(test PR-AUC {result.metrics.get('pr_auc', 0):.3f})"}
            st.rerun()
        except FraudlabError as exc:
            st.error(str(exc))

st.caption("Scores are the model's chance of fraud (0-1). PR-AUC (0-1, higher is better) is measured on the last "
           "fifth of the labelled window, which the model selecting run never saw; the champion is then refit on "
           "every matured labelled row. The alert threshold raises about the daily alert budget of alerts.")
excluded = feature_info(ws).get("excluded", {})
if excluded:
    with st.expander(f"{len(excluded)} source columns are never features (time indexes, label leaks)"):
        st.dataframe(ui_cases.readable(pd.DataFrame({"column": list(excluded), "why": list(excluded.values())})),
                     width="stretch", hide_index=True)
if table.empty:
    st.stop()

st.subheader("Registry")
shown = ui_cases.readable(table.drop(columns=["path"]))
st.dataframe(shown, width="stretch", hide_index=True)
st.download_button("Download registry (CSV)", ui_cases.csv_bytes(shown), "models.csv", "text/csv")
fallbacks = read(recent_fallbacks, ws)
if len(fallbacks):
    latest = fallbacks.iloc[0]
    st.warning(f"The last scoring of {latest['logged_at']:%Y-%m-%d %H:%M} fell back to "
               f"{'the rules' if latest['scorer'] == 'rules' else 'the previous champion'}: the champion could not "
               "answer. Fix: roll back to the previous champion below, or train and promote a new model; a model "
               "file changed since it was registered is refused as tampered, so restore it from a backup or retrain.")
    with st.expander(f"{len(fallbacks)} recent scoring fallback(s)"):
        st.dataframe(ui_cases.readable(fallbacks), width="stretch", hide_index=True)
flash = st.session_state.pop("models_flash", None)
if flash:
    (st.success if flash["ok"] else st.error)(flash["message"])
    for line in flash["checks"]:
        st.text(line)

ids = table["model_id"].tolist()
champ = table.loc[table["status"] == "champion", "model_id"]
default = ids.index(champ.iloc[0]) if len(champ) else 0
model_id = st.selectbox("Model", ids, index=default,
                        format_func=lambda m: f"{m} ({table.set_index('model_id').loc[m, 'status']})")
record = read(registry.get_model, ws, model_id)
m = record.metrics
cols = st.columns(5)
cols[0].metric("PR-AUC", f"{m.get('pr_auc', 0):.3f}")
cols[1].metric("ROC-AUC", f"{m.get('roc_auc', 0):.3f}")
cols[2].metric("Recall @ 90% precision", f"{m.get('recall_at_90_precision', 0):.2f}")
cols[3].metric(f"Precision @ {m.get('alert_budget_per_day', '?')}/day", f"{m.get('precision_at_budget', 0):.2f}")
cols[4].metric("Recall @ budget", f"{m.get('recall_at_budget', 0):.2f}")
st.caption(f"Trained on {record.train_from:%Y-%m-%d} → {record.train_to:%Y-%m-%d}; tested on "
           f"{m.get('test_from', '?')[:10]} → {m.get('test_to', '?')[:10]} ({m.get('test_rows', 0):,} rows, "
           f"{m.get('positives', 0)} frauds); {len(record.features)} features; data hash {record.data_hash}.")
if m.get("refit_note"):
    st.caption(m["refit_note"].capitalize() + ".")
if m.get("dropped"):
    st.caption("Dropped before training (no information in the training window): " +
               "; ".join(f"{plain_name(f)} ({why})" for f, why in m["dropped"].items()))
runs = read(list_evaluations, ws, model_id)
if len(runs):
    with st.expander(f"{len(runs)} time-honest evaluation run(s) of this model (python -m fraudlab evaluate)"):
        st.dataframe(ui_cases.readable(runs.drop(columns=["results"], errors="ignore")), width="stretch",
                     hide_index=True)

left, right = st.columns(2)
if "precision" in m:
    left.plotly_chart(pr_curve_figure(m), width="stretch")
    right.plotly_chart(roc_curve_figure(m), width="stretch")

st.subheader("Threshold and cost")
review_cost = st.number_input("Cost of one review", 0.0, 1000.0, float(m.get("cost_review", 5.0)))
predictions = read(registry.holdout_predictions, ws, model_id, key=model_id)
costs = cost_table(predictions, review_cost)
choices = threshold_choices(record.alert_threshold)
threshold = st.select_slider("Alert threshold (log scale)", choices, value=nearest(choices, record.alert_threshold),
                             format_func=lambda t: f"{t:.4g}", key=f"threshold_{model_id}",
                             help=f"Starts at the alert threshold the queue uses ({record.alert_threshold:.4g}); "
                                  f"the cost-minimising one is {m.get('threshold', float('nan')):.4g}")
at = cost_at(predictions["label"].astype(bool).to_numpy(), predictions["score"].to_numpy(),
             predictions["amount"].to_numpy(), threshold, review_cost)
c = st.columns(4)
c[0].metric("Alerts", f"{at['alerts']:,}")
c[1].metric("Frauds caught", f"{at['caught']:,} of {int(predictions['label'].sum()):,}")
c[2].metric("Missed fraud amount", f"{at['cost_missed']:,.0f}")
c[3].metric("Expected cost", f"{at['cost']:,.0f}")
st.plotly_chart(cost_curve_figure(costs, threshold), width="stretch")

st.subheader("What drives the score")
with st.spinner("Computing SHAP importance…"):
    st.plotly_chart(importance_figure(read(registry.importance, ws, model_id, key=model_id)), width="stretch")
if st.toggle("Show each payment's SHAP values (beeswarm and dependence plots)", key="shap_views",
             help="Exact SHAP values of 2,000 test-period payments; a few seconds the first time for each model"):
    _shap_views(ws, record, model_id, champ)

st.subheader("Promote or roll back")
if record.status != "champion":
    reason = st.text_input("Override reason (only needed if the guard blocks)", key="override")
    if allowed("promote", "promote models") and st.button(f"Promote {model_id}"):
        with st.spinner("Checking the guard, then rescoring every transaction…"):
            outcome = pipeline.promote_and_rescore(ws, model_id, who=me(), override_reason=reason or None)
        st.session_state["models_flash"] = {
            "ok": outcome.promoted, "message": outcome.message,
            "checks": [f"{'passed' if c.passed else 'BLOCKED'} · {c.name}: {c.detail}" for c in outcome.checks]}
        st.rerun()  # the registry above shows the new champion at once
else:
    st.caption("This model is the champion.")
    if allowed("rollback", "roll back models") and st.button("Roll back to the previous champion"):
        try:
            with st.spinner("Rolling back and rescoring…"):
                restored = pipeline.rollback_and_rescore(ws, who=me(), reason="rolled back from the Models page")
            st.session_state["models_flash"] = {"ok": True, "checks": [], "message": f"Rolled back: {restored} is the "
                                                "champion again and the scores are refreshed."}
            st.rerun()
        except FraudlabError as exc:
            st.error(str(exc))
pending = read(overrides.pending_overrides, ws)
if not pending.empty:
    st.subheader("Guard overrides waiting for a second admin")
    st.dataframe(ui_cases.readable(pending), width="stretch", hide_index=True)
    if allowed("guard_override", "approve guard overrides (a second admin does)"):
        request = st.selectbox("Request", pending["request_id"].tolist(), key="override_request")
        ok, no = st.columns(2)
        try:
            if ok.button("Approve and promote", key="override_approve"):
                with st.spinner("Promoting and rescoring…"):
                    promoted = overrides.approve_override(ws, me(), int(request))
                    pipeline.rescore(ws, me())
                st.session_state["models_flash"] = {"ok": True, "checks": [],
                                                    "message": f"{promoted} is the champion (override approved)."}
                st.rerun()
            if no.button("Reject", key="override_reject"):
                overrides.reject_override(ws, me(), int(request))
                st.rerun()
        except FraudlabError as exc:
            st.error(str(exc))

with st.expander("Registry history"):
    st.dataframe(ui_cases.readable(read(registry.model_events, ws)), width="stretch", hide_index=True)
