"""One owner for labels: an analyst's decision on any transaction, however old, reaches the next challenger."""
from __future__ import annotations

import pandas as pd
from people import analyst, reviewer

from fraudlab import cases, labels, rings
from fraudlab.model import training_frame
from fraudlab.promotion import guard_checks
from fraudlab.registry import champion
from fraudlab.workspace import Workspace


def _oldest_legitimate(ws: Workspace, n: int = 1) -> list[str]:
    return ws.df("""SELECT transaction_id FROM transactions WHERE NOT is_fraud ORDER BY ts LIMIT ?""",
                 [n])["transaction_id"].tolist()


def test_a_decision_on_an_old_transaction_is_in_the_next_training_frame(ws):
    old = _oldest_legitimate(ws)[0]
    before, *_ = training_frame(ws)
    assert not bool(before.set_index("transaction_id").loc[old, "label"])
    cases.decide(ws, old, "fraud", analyst("ana"), "chargeback came in late")
    after, *_ = training_frame(ws)
    row = after.set_index("transaction_id").loc[old]
    assert bool(row["label"]) and not bool(row["trusted"])  # known now, and marked as an analyst's label


def test_analyst_labels_are_known_on_the_data_clock_not_the_wall_clock(ws):
    old = _oldest_legitimate(ws)[0]
    cases.decide(ws, old, "fraud", analyst("ana"))
    stored = ws.df("SELECT label_ts, recorded_at FROM labels WHERE source = 'analyst' AND transaction_id = ?", [old])
    assert stored["label_ts"].iloc[0] == ws.scalar("SELECT max(ts) FROM transactions")
    assert stored["recorded_at"].iloc[0] > stored["label_ts"].iloc[0]  # the sample's data is older than today
    as_of_then = ws.scalar("SELECT min(ts) FROM transactions") + pd.Timedelta(days=1)
    assert old not in set(labels.labels_as_of(ws, as_of_then).query("not trusted")["transaction_id"])


def test_legitimate_from_an_analyst_clears_a_source_fraud_label_everywhere(ws):
    fraud = ws.df("SELECT transaction_id, customer_id FROM transactions WHERE is_fraud LIMIT 1").iloc[0]
    cases.decide(ws, fraud["transaction_id"], "legitimate", analyst("ana"), "customer confirmed")
    resolved = labels.labels_as_of(ws).set_index("transaction_id")
    assert not bool(resolved.loc[fraud["transaction_id"], "label"])
    tx = rings.ring_transactions(ws, [fraud["customer_id"]]).set_index("transaction_id")
    assert not bool(tx.loc[fraud["transaction_id"], "is_fraud"])  # rings once used bool_or: fraud stuck


def test_the_guard_sees_analyst_labels_on_the_champions_scores(ws):
    ids = ws.df("SELECT transaction_id FROM scores ORDER BY score DESC LIMIT 30")["transaction_id"].tolist()
    cases.decide_many(ws, ids, "legitimate", reviewer("ana"), "bulk")
    current = champion(ws)
    checks = {c.name: c for c in guard_checks(ws, current.model_id)}
    detail = checks["analyst contradictions"].detail  # "B of N analyst labels on confident scores contradict ..."
    contradicting, confident = int(detail.split()[0]), int(detail.split()[2])
    assert confident > 0 and contradicting == confident


def test_every_label_write_goes_through_the_labels_module():
    import ast
    from pathlib import Path

    package = Path(labels.__file__).parent
    writers = []
    for path in package.rglob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    any(w in node.value.upper() for w in ("INSERT INTO LABELS", "DELETE FROM LABELS", "UPDATE LABELS")):
                writers.append(path.name)
    assert set(writers) == {"labels.py"}, writers
