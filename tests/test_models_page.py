"""Models page through AppTest: metrics and curves render; train a challenger, promote it, roll back."""
from __future__ import annotations

from conftest import APP_PATH
from streamlit.testing.v1 import AppTest

from fraudlab.registry import champion, list_models
from fraudlab.workspace import Workspace


def _models_page() -> AppTest:
    at = AppTest.from_file(APP_PATH, default_timeout=120)
    at.run()
    at.switch_page("pages/models.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_models_page_shows_champion_metrics_and_charts(app_workspace):
    at = _models_page()
    assert at.title[0].value == "Models"
    labels = [m.label for m in at.metric]
    assert "PR-AUC" in labels and "Expected cost" in labels
    assert float(at.metric[0].value) > 0.3
    assert len(at.get("plotly_chart")) >= 4
    assert any("champion" in str(b.label) or "Roll back" in str(b.label) for b in at.button)


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
