"""Case queue logic: ordering, filters, paging, decisions under concurrency, conflicts, labels, locks, assignment."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from fraudlab import cases
from fraudlab.case_report import case_report_html
from fraudlab.errors import DecisionConflict, FraudlabError
from fraudlab.workspace import utcnow


def test_queue_is_ranked_and_pages_cover_every_case(ws):
    first, total = cases.queue(ws, limit=20)
    assert total == ws.count("cases") > 100
    assert first["score"].is_monotonic_decreasing
    by_loss, _ = cases.queue(ws, sort="expected_loss", limit=20)
    assert by_loss["expected_loss"].is_monotonic_decreasing
    seen = set()
    for offset in range(0, total, 500):
        page, _ = cases.queue(ws, limit=500, offset=offset)
        seen |= set(page["case_id"])
    assert len(seen) == total


def test_filters_narrow_the_queue(ws):
    rows, _ = cases.queue(ws, limit=1000)
    country = rows["country"].mode().iloc[0]
    only, n = cases.queue(ws, cases.QueueFilter(countries=(country,), min_amount=10.0), limit=1000)
    assert n > 0 and (only["country"] == country).all() and (only["amount"] >= 10).all()
    family = rows["reason_family"].iloc[0]
    fam, _ = cases.queue(ws, cases.QueueFilter(reason_families=(family,)), limit=1000)
    assert (fam["reason_family"] == family).all()
    high, _ = cases.queue(ws, cases.QueueFilter(min_score=0.9), limit=1000)
    assert (high["score"] >= 0.9).all()
    decided = rows["case_id"].iloc[0]
    cases.decide(ws, decided, "legitimate", "alice")
    still_open, _ = cases.queue(ws, cases.QueueFilter(statuses=("open",)), limit=5000)
    assert decided not in set(still_open["case_id"])
    closed, _ = cases.queue(ws, cases.QueueFilter(statuses=("legitimate",)))
    assert closed["case_id"].tolist() == [decided]


def test_concurrent_decisions_are_all_stored(ws):
    ids = cases.queue(ws, limit=50)[0]["case_id"].tolist()
    errors = []

    def work(worker: int) -> None:
        try:
            for i in range(50):
                cases.decide(ws, ids[(worker + i) % len(ids)], ("fraud", "legitimate", "escalate")[i % 3],
                             f"analyst-{worker}", f"note {i}")
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert ws.count("decisions") == 1_000
    assert ws.scalar("SELECT count(DISTINCT decision_id) FROM decisions") == 1_000
    chains = ws.scalar("SELECT count(*) FROM decisions WHERE previous_decision_id IS NULL")
    assert chains == len(ids)  # every case's history is one chain: each decision points at the one before


def test_second_analyst_learns_someone_decided_first_and_both_are_kept(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    seen_by_both = None
    first = cases.decide(ws, case_id, "fraud", "alice", expected_previous=seen_by_both)
    second = cases.decide(ws, case_id, "legitimate", "bob", expected_previous=seen_by_both)
    assert first.conflict is None
    assert second.conflict["analyst"] == "alice" and second.conflict["decision"] == "fraud"
    with pytest.raises(DecisionConflict, match="alice decided 'fraud'"):
        cases.require_no_conflict(second)
    history = cases.decision_history(ws, case_id)
    assert history["decision"].tolist() == ["legitimate", "fraud"]
    assert cases.current_decisions(ws, [case_id])["decision"].iloc[0] == "legitimate"
    labels = ws.df("SELECT is_fraud FROM labels WHERE transaction_id = ? AND source = 'analyst' ORDER BY label_ts",
                   [case_id])["is_fraud"].tolist()
    assert labels == [True, False]
    assert (ws.audit_log()["action"] == "decision").sum() == 2


def test_escalation_then_reviewer_decision(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    cases.decide(ws, case_id, "escalate", "junior", "not sure")
    escalated, _ = cases.queue(ws, cases.QueueFilter(statuses=("escalated",)))
    assert case_id in set(escalated["case_id"])
    assert ws.scalar("SELECT count(*) FROM labels WHERE transaction_id = ? AND source = 'analyst'", [case_id]) == 0
    cases.decide(ws, case_id, "fraud", "senior", "confirmed", expected_previous=None)
    assert cases.current_decisions(ws, [case_id])["analyst"].iloc[0] == "senior"


def test_bad_decisions_are_refused(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    with pytest.raises(FraudlabError, match="unknown decision"):
        cases.decide(ws, case_id, "maybe", "alice")
    with pytest.raises(FraudlabError, match="analyst's name"):
        cases.decide(ws, case_id, "fraud", " ")
    with pytest.raises(FraudlabError, match="no transaction"):
        cases.decide(ws, "nope", "fraud", "alice")


def test_locks_keep_others_out_until_they_expire(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    cases.take_case(ws, case_id, "alice")
    with pytest.raises(cases.CaseLocked, match="alice"):
        cases.take_case(ws, case_id, "bob")
    assert cases.next_case(ws, "bob") != case_id
    with ws.write() as cur:
        cur.execute("UPDATE case_assignments SET locked_until = ? WHERE case_id = ?",
                    [utcnow() - timedelta(minutes=1), case_id])
    cases.take_case(ws, case_id, "bob")
    assert cases.lock_holder(ws, case_id)[0] == "bob"
    cases.decide(ws, case_id, "fraud", "bob")
    assert cases.lock_holder(ws, case_id) is None


def test_round_robin_respects_the_cap(ws):
    plan = cases.assign_round_robin(ws, ["ann", "ben", "cy"], cap=4)
    assert plan["assignee"].value_counts().to_dict() == {"ann": 4, "ben": 4, "cy": 4}
    mine, n = cases.queue(ws, cases.QueueFilter(assignee="ben"))
    assert n == 4 and (mine["assignee"] == "ben").all()
    assert cases.assign_round_robin(ws, ["ann"], cap=4).empty


def test_bulk_decisions_and_case_detail(ws):
    ids = cases.queue(ws, limit=5)[0]["case_id"].tolist()
    done = cases.decide_many(ws, ids, "fraud", "alice", "card-testing burst")
    assert len(done) == 5 and set(cases.current_decisions(ws, ids)["decision"]) == {"fraud"}
    detail = cases.case_detail(ws, ids[0])
    assert detail.case["status"] == "fraud"
    assert detail.history["is_case"].sum() == 1
    assert set(detail.linked["kind"]) <= {"device", "IP address", "card", "email"}
    assert not detail.linked.loc[detail.linked["kind"] == "card", "value"].str.contains(r"\d{16}").any()
    other = cases.case_detail(ws, ids[1])
    assert ids[0] in set(other.similar["case_id"]) or other.similar.empty


def test_case_report_escapes_hostile_strings_and_masks_cards(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    cases.decide(ws, case_id, "fraud", "<img src=x onerror=alert(1)>", "<script>alert(1)</script>")
    detail = cases.case_detail(ws, case_id)
    page = case_report_html(detail)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    card = str(detail.case["card_id"])
    assert card not in page and f"•••• {card[-4:]}" in page
