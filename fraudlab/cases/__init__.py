"""Cases, alerts, decisions, assignment and locks: where analysts spend their day.

An alert is a scored transaction at or above the alert threshold (or one ever decided). A case groups a customer's
alerts that follow each other within a window (72 hours by default); its id is its first alert's transaction id.
`alerts` and `cases` are small materialised tables rebuilt by the pipeline when scores change, so the queue pages
through cases instead of millions of scored rows. Decisions are append-only and name the alerts they cover: deciding
a case labels each of its alerts, and one alert can be overridden inside it. Two analysts deciding at once both keep
theirs, and the second learns that someone else decided first.

Modules: ``build`` (records, the tables), ``queue`` (states, filters, ranking), ``decisions`` (decisions, comments),
``team`` (locks, next case, assignment), ``oversight`` (the team's numbers, QA sample), ``detail`` (one case,
one customer).
"""
from fraudlab.cases.build import (
    CASE_WINDOW_HOURS,
    CLOSE_REASONS,
    DECISIONS,
    LOCK_MINUTES,
    PAGE_SIZE,
    QUEUE_COLUMNS,
    REASON_FAMILIES,
    SLA_HOURS,
    STATUSES,
    CaseDetail,
    CaseLocked,
    DecisionResult,
    QueueFilter,
    cases_stale,
    last_build,
    reason_family,
    refresh_cases,
)
from fraudlab.cases.decisions import (
    add_comment,
    case_comments,
    current_decisions,
    decide,
    decide_many,
    decision_history,
    require_no_conflict,
)
from fraudlab.cases.detail import (
    CustomerView,
    case_detail,
    case_facts,
    customer_history,
    customer_view,
    linked_entities,
    similar_cases,
)
from fraudlab.cases.entities import LINK_KINDS, count_loaded
from fraudlab.cases.oversight import QA_NOTE, TeamReport, qa_sample, send_for_review, team_report
from fraudlab.cases.queue import (
    SORTS,
    alert_budget,
    assignment_stamp,
    case_alerts,
    case_of,
    open_alert_ids,
    queue,
    queue_options,
)
from fraudlab.cases.team import assign_round_robin, lock_holder, next_case, release_case, take_case

__all__ = ["CASE_WINDOW_HOURS", "CLOSE_REASONS", "DECISIONS", "LINK_KINDS", "LOCK_MINUTES", "PAGE_SIZE",
           "QUEUE_COLUMNS", "REASON_FAMILIES", "SLA_HOURS", "SORTS", "STATUSES", "CaseDetail", "CaseLocked", "QA_NOTE", "TeamReport", "qa_sample", "send_for_review", "team_report",
           "DecisionResult", "QueueFilter", "add_comment", "alert_budget", "assign_round_robin", "assignment_stamp",
           "case_alerts", "case_comments", "case_detail", "case_facts", "case_of", "cases_stale", "count_loaded",
           "current_decisions", "customer_history", "customer_view", "CustomerView", "decide", "decide_many", "decision_history", "linked_entities",
           "last_build", "lock_holder", "next_case", "open_alert_ids", "queue", "queue_options", "reason_family", "refresh_cases",
           "release_case", "require_no_conflict", "similar_cases", "take_case"]
