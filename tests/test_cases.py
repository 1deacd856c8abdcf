"""Case queue logic: ordering, filters, paging, decisions under concurrency, conflicts, labels, locks, assignment."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from people import analyst, manager, reviewer

from fraudlab import cases
from fraudlab.auth.permissions import NotAllowed
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
    cases.decide(ws, decided, "legitimate", analyst("alice"))
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
                cases.decide(ws, ids[(worker + i) % len(ids)], ("fraud", "legitimate")[i % 2],
                             analyst(f"analyst-{worker}"), f"note {i}")
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
    first = cases.decide(ws, case_id, "fraud", analyst("alice"), expected_previous=seen_by_both)
    second = cases.decide(ws, case_id, "legitimate", analyst("bob"), expected_previous=seen_by_both)
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
    cases.decide(ws, case_id, "escalate", analyst("junior"), "not sure")
    escalated, _ = cases.queue(ws, cases.QueueFilter(statuses=("escalated",)))
    assert case_id in set(escalated["case_id"])
    assert ws.scalar("SELECT count(*) FROM labels WHERE transaction_id = ? AND source = 'analyst'", [case_id]) == 0
    with pytest.raises(NotAllowed, match="Reviewer"):  # an analyst may not decide an escalated case
        cases.decide(ws, case_id, "fraud", analyst("peer"), "looks fine")
    with pytest.raises(NotAllowed, match="four eyes"):  # nor may the reviewer who escalated it
        cases.decide(ws, case_id, "fraud", reviewer("junior"), "confirmed")
    cases.decide(ws, case_id, "fraud", reviewer("senior"), "confirmed", expected_previous=None)
    assert cases.current_decisions(ws, [case_id])["analyst"].iloc[0] == "senior"
    refused = ws.df("SELECT who, details FROM audit WHERE action = 'refused'")
    assert set(refused["who"]) == {"peer", "junior"}


def test_bad_decisions_are_refused(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    with pytest.raises(FraudlabError, match="unknown decision"):
        cases.decide(ws, case_id, "maybe", analyst("alice"))
    with pytest.raises(FraudlabError, match="logged-in user"):
        cases.decide(ws, case_id, "fraud", " ")  # a typed name is no identity
    with pytest.raises(FraudlabError, match="no transaction"):
        cases.decide(ws, "nope", "fraud", analyst("alice"))


def test_locks_keep_others_out_until_they_expire(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    cases.take_case(ws, case_id, analyst("alice"))
    with pytest.raises(cases.CaseLocked, match="alice"):
        cases.take_case(ws, case_id, analyst("bob"))
    assert cases.next_case(ws, analyst("bob")) != case_id
    with ws.write() as cur:
        cur.execute("UPDATE case_assignments SET locked_until = ? WHERE case_id = ?",
                    [utcnow() - timedelta(minutes=1), case_id])
    cases.take_case(ws, case_id, analyst("bob"))
    assert cases.lock_holder(ws, case_id)[0] == "bob"
    cases.decide(ws, case_id, "fraud", analyst("bob"))
    assert cases.lock_holder(ws, case_id) is None


def test_round_robin_respects_the_cap(ws):
    plan = cases.assign_round_robin(ws, ["ann", "ben", "cy"], cap=4, who=manager())
    assert plan["assignee"].value_counts().to_dict() == {"ann": 4, "ben": 4, "cy": 4}
    mine, n = cases.queue(ws, cases.QueueFilter(assignee="ben"))
    assert n == 4 and (mine["assignee"] == "ben").all()
    assert cases.assign_round_robin(ws, ["ann"], cap=4, who=manager()).empty


def test_bulk_decisions_and_case_detail(ws):
    ids = cases.queue(ws, limit=5)[0]["case_id"].tolist()
    done = cases.decide_many(ws, ids, "fraud", reviewer("alice"), "card-testing burst")
    assert len(done) == 5 and set(cases.current_decisions(ws, ids)["decision"]) == {"fraud"}
    detail = cases.case_detail(ws, ids[0])
    assert detail.case["status"] == "fraud"
    assert detail.history["is_case"].sum() == detail.case["alerts"] == len(detail.alerts) >= 1
    assert set(detail.linked["kind"]) <= {"device", "IP address", "card", "email"}
    assert not detail.linked.loc[detail.linked["kind"] == "card", "value"].str.contains(r"\d{16}").any()
    other = cases.case_detail(ws, ids[1])
    assert ids[0] in set(other.similar["case_id"]) or other.similar.empty


def test_case_report_escapes_hostile_strings_and_masks_cards(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    cases.decide(ws, case_id, "fraud", analyst("<img src=x onerror=alert(1)>"), "<script>alert(1)</script>")
    detail = cases.case_detail(ws, case_id)
    page = case_report_html(detail)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    card = str(detail.case["card_id"])
    assert card not in page and f"•••• {card[-4:]}" in page


def test_a_customers_alerts_roll_up_into_one_case_and_a_decision_labels_each(ws):
    grouped = ws.df("SELECT case_id, count(*) AS n FROM alerts GROUP BY 1 HAVING n > 1 ORDER BY n DESC LIMIT 1")
    assert not grouped.empty, "the sample has customers with several alerts in a burst"
    case_id = grouped["case_id"].iloc[0]
    alerts = cases.case_alerts(ws, case_id)
    assert len(alerts) == int(grouped["n"].iloc[0]) and (alerts["status"] == "open").all()
    gaps = ws.df("SELECT ts FROM alerts WHERE case_id = ? ORDER BY ts", [case_id])["ts"].diff().dropna()
    assert (gaps <= timedelta(hours=cases.CASE_WINDOW_HOURS)).all()
    cases.decide(ws, case_id, "fraud", analyst("ana"), "card-testing burst", close_reason="card testing")
    labels = ws.df("SELECT transaction_id FROM labels WHERE source = 'analyst' AND is_fraud")["transaction_id"]
    assert set(alerts["alert_id"]) <= set(labels)
    row = cases.queue(ws, cases.QueueFilter(statuses=("fraud",)), limit=500)[0].set_index("case_id").loc[case_id]
    assert row["alerts"] == len(alerts) and row["open_alerts"] == 0 and row["close_reason"] == "card testing"


def test_one_alert_is_overridden_inside_its_case_and_a_case_reopens_with_a_reason(ws):
    case_id = ws.df("SELECT case_id FROM alerts GROUP BY 1 HAVING count(*) > 1 LIMIT 1")["case_id"].iloc[0]
    alerts = cases.case_alerts(ws, case_id)["alert_id"].tolist()
    cases.decide(ws, case_id, "fraud", analyst("ana"), close_reason="account takeover")
    cases.decide(ws, case_id, "legitimate", analyst("ana"), "this one was the customer", alerts=[alerts[-1]],
                 close_reason="legitimate: customer confirmed")
    states = cases.case_alerts(ws, case_id).set_index("alert_id")["status"]
    assert states[alerts[-1]] == "legitimate" and (states.drop(alerts[-1]) == "fraud").all()
    with pytest.raises(FraudlabError, match="needs a reason"):
        cases.decide(ws, case_id, "reopen", reviewer("bob"))
    cases.decide(ws, case_id, "reopen", reviewer("bob"), "chargeback disputed")
    detail = cases.case_detail(ws, alerts[-1])  # any alert finds its case
    assert detail.case["case_id"] == case_id and detail.case["status"] == "open"
    assert detail.decisions["decision"].tolist()[:3] == ["reopen", "legitimate", "fraud"]
    with pytest.raises(FraudlabError, match="not part of case"):
        cases.decide(ws, case_id, "fraud", analyst("ana"), alerts=["T-nowhere"])
    with pytest.raises(FraudlabError, match="unknown close reason"):
        cases.decide(ws, case_id, "fraud", analyst("ana"), close_reason="bad luck")


def test_comments_are_an_append_only_thread(ws):
    case_id = cases.queue(ws)[0]["case_id"].iloc[0]
    cases.add_comment(ws, case_id, analyst("ana"), "called the customer, no answer")
    cases.add_comment(ws, case_id, analyst("bob"), "<b>second</b> try tomorrow")
    thread = cases.case_detail(ws, case_id).comments
    assert thread["author"].tolist() == ["ana", "bob"] and thread["body"].iloc[1] == "<b>second</b> try tomorrow"
    with pytest.raises(FraudlabError, match="empty"):
        cases.add_comment(ws, case_id, analyst("ana"), "  ")


def test_the_team_report_counts_decisions_time_to_decision_and_agreement_with_later_labels(ws):
    ids = cases.queue(ws, limit=6)[0]["case_id"].tolist()
    cases.decide_many(ws, ids[:4], "fraud", reviewer("ana"))
    cases.decide(ws, ids[4], "legitimate", analyst("bob"), close_reason="legitimate: customer confirmed")
    report = cases.team_report(ws)
    by = report.per_analyst.set_index("analyst")
    assert by.loc["ana", "decisions"] == 4 and by.loc["bob", "decisions"] == 1
    assert by.loc["ana", "median_hours_to_decision"] >= 0
    agreement = by.loc["ana", "agreement_with_labels"]
    assert agreement != agreement or 0 <= agreement <= 1  # NaN when no source label exists for those alerts
    assert int(report.per_day["decisions"].sum()) == 5 and report.open_cases > 0


def test_a_qa_sample_of_closed_cases_goes_back_for_second_review(ws):
    ids = cases.queue(ws, limit=8)[0]["case_id"].tolist()
    cases.decide_many(ws, ids, "legitimate", reviewer("ana"))
    sample = cases.qa_sample(ws, n=3, seed=1)
    assert len(sample) == 3 and set(sample["case_id"]) <= set(ids)
    assert sample["case_id"].tolist() == cases.qa_sample(ws, n=3, seed=1)["case_id"].tolist()  # reproducible
    assert cases.send_for_review(ws, sample["case_id"].tolist(), manager("manager")) == 3
    escalated, _ = cases.queue(ws, cases.QueueFilter(statuses=("escalated",)))
    assert set(sample["case_id"]) <= set(escalated["case_id"])
