"""Case queue, decisions, assignment and locks: where analysts spend their day.

A case is a scored transaction at or above the alert threshold (or one that was ever decided); case_id is the
transaction_id. The `cases` table is a small materialised view rebuilt when the scores change, so the queue
pages through thousands of alerts instead of millions of scored rows. Decisions are append-only: the current
state of a case is its newest decision, two analysts deciding at once both keep theirs, and the second learns
that someone else decided first.
"""
from fraudlab.cases.build import (
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
    reason_family,
    refresh_cases,
)
from fraudlab.cases.decisions import (
    current_decisions,
    decide,
    decide_many,
    decision_history,
    newest_of,
    require_no_conflict,
)
from fraudlab.cases.detail import LINK_KINDS, case_detail, case_facts, customer_history, linked_entities, similar_cases
from fraudlab.cases.queue import SORTS, STATE_SQL, alert_budget, assignment_stamp, queue, queue_options, where_of
from fraudlab.cases.team import assign_round_robin, lock_holder, next_case, release_case, take_case

__all__ = ['CaseDetail', 'CaseLocked', 'DECISIONS', 'DecisionResult', 'LINK_KINDS', 'LOCK_MINUTES', 'PAGE_SIZE', 'QUEUE_COLUMNS', 'QueueFilter', 'REASON_FAMILIES', 'SLA_HOURS', 'SORTS', 'STATE_SQL', 'STATUSES', 'alert_budget', 'assign_round_robin', 'assignment_stamp', 'case_detail', 'case_facts', 'cases_stale', 'current_decisions', 'customer_history', 'decide', 'decide_many', 'decision_history', 'linked_entities', 'lock_holder', 'newest_of', 'next_case', 'queue', 'queue_options', 'reason_family', 'refresh_cases', 'release_case', 'require_no_conflict', 'similar_cases', 'take_case', 'where_of']
