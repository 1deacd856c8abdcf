"""Models page through AppTest: metrics, curves and SHAP views render; train a challenger, compare, promote, roll back."""
from __future__ import annotations

import html
import json

import numpy as np
import pytest
import shap
from conftest import APP_PATH
from streamlit.testing.v1 import AppTest

from fraudlab.charts.models import beeswarm_figure, dependence_figure, scaled
from fraudlab.registry import champion, list_models
from fraudlab.workspace import Workspace

HOSTILE = '<img src=x onerror="alert(1)"> %{x}'


def _models_page() -> AppTest:
    at = AppTest.from_file(APP_PATH, default_timeout=120)
    at.run()
    at.switch_page("pages/models.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_models_page_shows_champion_metrics_and_charts(app_workspace):
    at = _models_page()
    assert "beeswarm_selected" not in _charts(at)  # SHAP views are computed only when asked for
    at.toggle(key="shap_views").set_value(True).run()
    assert at.title[0].value == "Models"
    labels = [m.label for m in at.metric]
    assert "PR-AUC" in labels and "Expected cost" in labels
    assert float(at.metric[0].value) > 0.3
    assert len(at.get("plotly_chart")) >= 4
    assert any("champion" in str(b.label) or "Roll back" in str(b.label) for b in at.button)
    charts = _charts(at)
    assert "beeswarm_selected" in charts and "dependence" in charts and "beeswarm_champion" not in charts
    rows = [t for t in charts["beeswarm_selected"]["data"] if t.get("mode") == "markers"]
    assert 1 <= len(rows) <= 15 and len({t["name"] for t in rows}) == len(rows)
    picker = next(s for s in at.selectbox if s.label == "Feature to look at")
    assert picker.value == picker.options[0]  # the top feature first
    picker.select(picker.options[1]).run()
    assert not at.exception, at.exception
    title = _charts(at)["dependence"]["layout"]["title"]["text"]
    assert title.startswith(f"How {html.escape(picker.options[1])} moves the score, coloured by ")


@pytest.mark.slow  # trains models: runs with -m slow (CI runs it)
def test_train_promote_and_roll_back_from_the_page(app_workspace):
    at = _models_page()
    first = champion(Workspace(app_workspace)).model_id
    next(b for b in at.button if b.label == "Train challenger").click()
    at.run()
    assert not at.exception, at.exception
    ws = Workspace(app_workspace)
    models = list_models(ws)
    assert len(models) == 2
    challenger = models.loc[models["status"] == "challenger", "model_id"].iloc[0]
    ws.close()
    at.selectbox[0].select(challenger).run()
    at.toggle(key="shap_views").set_value(True).run()
    assert not at.exception, at.exception
    charts = _charts(at)  # champion and challenger side by side
    assert charts["beeswarm_champion"]["layout"]["title"]["text"].startswith("Champion ")
    assert charts["beeswarm_selected"]["layout"]["title"]["text"] == f"Challenger {challenger}"
    _act(at, challenger, "Promote")
    assert _champion(app_workspace) == challenger  # same data, same seed: the guard passes
    _act(at, challenger, "Roll back")
    assert _champion(app_workspace) == first


def _act(at: AppTest, model_id: str, button: str) -> None:
    """Select a model and press the button whose label starts with `button`."""
    at.selectbox[0].select(model_id)
    at.run()
    next(b for b in at.button if b.label.startswith(button)).click()
    at.run()
    assert not at.exception, at.exception


def _champion(path) -> str:
    ws = Workspace(path)
    try:
        return champion(ws).model_id
    finally:
        ws.close()


def _charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by the key they were given (their element id ends with it)."""
    out = {}
    for chart in at.get("plotly_chart"):
        proto = chart.proto
        key = proto.id.rsplit("-", 1)[-1] if proto.id else ""
        out[key] = json.loads(proto.spec)
    return out


def _explanation(names: list[str], n: int = 200, seed: int = 0) -> shap.Explanation:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, len(names)))
    data[:10, 0] = np.nan
    values = data * np.arange(1, len(names) + 1)
    values[np.isnan(values)] = 0.0
    return shap.Explanation(values=values, base_values=np.zeros(n), data=data, feature_names=names)


def test_beeswarm_has_one_row_per_shown_feature_in_importance_order_and_escapes_names():
    names = [HOSTILE] + [f"feature {i}" for i in range(1, 20)]
    fig = beeswarm_figure(_explanation(names), top=15)
    assert len(fig.data) == 15
    labels = list(fig.layout.yaxis.ticktext)
    assert labels[-1] == "feature 19" and labels[0] == "feature 5"  # strongest on top; the weakest shown at the bottom
    for row, trace in enumerate(fig.data):
        assert trace.name == labels[row] and np.all(np.abs(np.asarray(trace.y) - row) < 0.5)
    small = beeswarm_figure(_explanation(names[:3]), top=15)
    text = json.dumps(small.to_plotly_json(), default=str)
    assert "<img" not in text and "&lt;img src=x" in text and len(small.data) == 3
    hostile = next(t for t in small.data if "&lt;img" in t.name)
    assert hostile.marker.color[:10].tolist() == [-0.1] * 10  # missing values: the grey band
    assert "%{x}" not in hostile.hovertemplate and "missing" in hostile.text[0]


def test_dependence_plots_value_against_shap_coloured_by_the_partner():
    names = ["a", HOSTILE, "c"]
    explanation = _explanation(names)
    fig = dependence_figure(explanation, "a", HOSTILE)
    (trace,) = fig.data
    assert len(trace.x) == 190  # the 10 missing values of a are left out and counted in the axis title
    np.testing.assert_array_equal(trace.y, explanation.values[10:, 0])
    np.testing.assert_array_equal(trace.marker.color, scaled(explanation.data[:, 1])[10:])
    assert "10 missing" in fig.layout.xaxis.title.text
    assert "<img" not in json.dumps(fig.to_plotly_json(), default=str)
    assert 0 <= scaled(explanation.data[:, 2]).min() and scaled(explanation.data[:, 2]).max() <= 1
