"""First start: an empty workspace is filled from the bundled sample, featurised, a model trained and scored."""
from __future__ import annotations

from typing import Callable

from fraudlab.config import SAMPLE_PATH
from fraudlab.errors import ModelError
from fraudlab.features import build_features, has_features
from fraudlab.ingest import IngestReport, ingest_path
from fraudlab.model import train_model
from fraudlab.registry import champion, register
from fraudlab.scoring import score_window
from fraudlab.workspace import Workspace

Progress = Callable[[float, str], None]
FIRST_START_EXPLAIN = 5_000


def _training_failed(ws: Workspace) -> bool:
    """True when training a first model already failed on exactly this many transactions (do not retry each page)."""
    rows = ws.count("transactions")
    return bool(ws.scalar("SELECT count(*) FROM audit WHERE action = 'first_training_failed' AND details LIKE $d",
                          {"d": f'%"rows": {rows}%'}))


def needs_first_start(ws: Workspace) -> bool:
    """True while the workspace lacks transactions, fresh features, a first model, or scores for every row."""
    if ws.count("transactions") == 0 or not has_features(ws):
        return True
    if champion(ws) is None:
        return not _training_failed(ws)
    return ws.count("scores") < ws.count("transactions")


def first_start(ws: Workspace, progress: Progress | None = None) -> list[str]:
    """Bring the workspace up to date: sample loaded if empty, features built, a first model trained, rows scored."""
    progress = progress or (lambda _f, _m: None)
    done: list[str] = []
    if ws.count("transactions") == 0:
        progress(0.02, "loading the bundled sample")
        report: IngestReport = ingest_path(ws, SAMPLE_PATH, progress=lambda f, m: progress(0.02 + 0.15 * f, m))
        done.append(f"loaded sample: {report.message}")
    if not has_features(ws):
        features = build_features(ws, progress=lambda f, m: progress(0.2 + 0.2 * f, m))
        done.append(f"built {len(features.columns)} point-in-time features in {features.seconds:.1f} s")
    if champion(ws) is None and not _training_failed(ws):
        try:
            result = train_model(ws, progress=lambda f, m: progress(0.4 + 0.3 * f, m))
        except ModelError as exc:
            with ws.write("first_training_failed", "system", {"rows": ws.count("transactions"), "why": str(exc)}):
                pass
            done.append(f"no model yet: {exc}")
        else:
            model_id = register(ws, result)
            done.append(f"trained first champion {model_id} (test PR-AUC {result.metrics.get('pr_auc', 0):.3f})")
    if champion(ws) is not None and ws.count("scores") < ws.count("transactions"):
        start = ws.scalar("SELECT min(ts) FROM transactions WHERE transaction_id NOT IN (SELECT transaction_id FROM scores)")
        scored = score_window(ws, start=start, explain_top=FIRST_START_EXPLAIN,
                              progress=lambda f, m: progress(0.7 + 0.3 * f, m))
        done.append(f"scored {scored.rows:,} transactions, explained the top {scored.explained:,}")
    progress(1.0, "ready")
    return done
