"""First start: an empty workspace is filled from the bundled sample, featurised, a model trained and scored."""
from __future__ import annotations

from typing import Callable

from fraudlab.config import SAMPLE_PATH
from fraudlab.features import build_features, has_features
from fraudlab.ingest import IngestReport, ingest_path
from fraudlab.model import train_model
from fraudlab.registry import champion, register
from fraudlab.scoring import score_window
from fraudlab.workspace import Workspace

Progress = Callable[[float, str], None]
FIRST_START_EXPLAIN = 5_000


def needs_first_start(ws: Workspace) -> bool:
    """True while the workspace lacks transactions, features, a champion model or scores."""
    return (ws.count("transactions") == 0 or not has_features(ws) or champion(ws) is None
            or ws.count("scores") == 0)


def first_start(ws: Workspace, progress: Progress | None = None) -> list[str]:
    """Load the bundled sample into an empty workspace; return what was done, step by step."""
    progress = progress or (lambda _f, _m: None)
    done: list[str] = []
    if ws.count("transactions") == 0:
        progress(0.02, "loading the bundled sample")
        report: IngestReport = ingest_path(ws, SAMPLE_PATH, progress=lambda f, m: progress(0.02 + 0.15 * f, m))
        done.append(f"loaded sample: {report.message}")
    if not has_features(ws):
        features = build_features(ws, progress=lambda f, m: progress(0.2 + 0.2 * f, m))
        done.append(f"built {len(features.columns)} point-in-time features in {features.seconds:.1f} s")
    if champion(ws) is None:
        result = train_model(ws, progress=lambda f, m: progress(0.4 + 0.3 * f, m))
        model_id = register(ws, result)
        done.append(f"trained first champion {model_id} (test PR-AUC {result.metrics.get('pr_auc', 0):.3f})")
    if ws.count("scores") == 0:
        scored = score_window(ws, explain_top=FIRST_START_EXPLAIN, progress=lambda f, m: progress(0.7 + 0.3 * f, m))
        done.append(f"scored {scored.rows:,} transactions, explained the top {scored.explained:,}")
    progress(1.0, "ready")
    return done
