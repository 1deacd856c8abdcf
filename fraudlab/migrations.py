"""The workspace schema: the first release's tables and every forward migration since, in order.

Only `fraudlab.workspace` applies them (one transaction a file); nothing else creates a table."""
from __future__ import annotations

CANONICAL_COLUMNS: dict[str, str] = {
    "transaction_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "amount": "DOUBLE",
    "customer_id": "VARCHAR",
    "card_id": "VARCHAR",
    "device_id": "VARCHAR",
    "ip": "VARCHAR",
    "email": "VARCHAR",
    "merchant_id": "VARCHAR",
    "category": "VARCHAR",
    "channel": "VARCHAR",
    "country": "VARCHAR",
    "currency": "VARCHAR",
    "lat": "DOUBLE",
    "lon": "DOUBLE",
    "merchant_lat": "DOUBLE",
    "merchant_lon": "DOUBLE",
    "is_fraud": "BOOLEAN",
}

_TRANSACTION_COLUMNS_SQL = ",\n    ".join(f"{name} {sqltype}" for name, sqltype in CANONICAL_COLUMNS.items())

# Version 1 is the first release's schema (ten tables here, the rest created lazily by their modules). Each later
# version is a forward migration; opening a workspace applies the ones it lacks, in order, in one transaction.
SCHEMA_V1 = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
INSERT INTO meta VALUES ('version', '0') ON CONFLICT DO NOTHING;
CREATE SEQUENCE IF NOT EXISTS ingest_seq START 1;
CREATE SEQUENCE IF NOT EXISTS audit_seq START 1;
CREATE SEQUENCE IF NOT EXISTS decision_seq START 1;
CREATE SEQUENCE IF NOT EXISTS drift_run_seq START 1;
CREATE TABLE IF NOT EXISTS transactions (
    {_TRANSACTION_COLUMNS_SQL},
    ingest_id INTEGER
);
CREATE TABLE IF NOT EXISTS ingests (
    ingest_id INTEGER PRIMARY KEY,
    source VARCHAR,
    sha256 VARCHAR,
    started_at TIMESTAMP,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_quarantined BIGINT,
    seconds DOUBLE,
    mapping VARCHAR,
    engine VARCHAR,
    status VARCHAR
);
CREATE TABLE IF NOT EXISTS quarantine (ingest_id INTEGER, row_number BIGINT, raw VARCHAR, reason VARCHAR);
CREATE TABLE IF NOT EXISTS labels (transaction_id VARCHAR, is_fraud BOOLEAN, label_ts TIMESTAMP, source VARCHAR);
CREATE TABLE IF NOT EXISTS models (
    model_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP,
    kind VARCHAR,
    features VARCHAR,
    params VARCHAR,
    train_from TIMESTAMP,
    train_to TIMESTAMP,
    data_hash VARCHAR,
    metrics VARCHAR,
    status VARCHAR,
    path VARCHAR
);
CREATE TABLE IF NOT EXISTS scores (
    transaction_id VARCHAR,
    model_id VARCHAR,
    score DOUBLE,
    scorer VARCHAR,
    latency_ms DOUBLE,
    scored_at TIMESTAMP,
    reasons VARCHAR
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id BIGINT PRIMARY KEY,
    case_id VARCHAR,
    analyst VARCHAR,
    decision VARCHAR,
    note VARCHAR,
    decided_at TIMESTAMP,
    previous_decision_id BIGINT
);
CREATE TABLE IF NOT EXISTS audit (audit_id BIGINT PRIMARY KEY, logged_at TIMESTAMP, who VARCHAR, action VARCHAR,
                                  details VARCHAR);
CREATE TABLE IF NOT EXISTS drift_runs (run_id BIGINT PRIMARY KEY, created_at TIMESTAMP, reference VARCHAR,
                                       current VARCHAR, results VARCHAR);
"""

MIGRATIONS: dict[int, str] = {
    # 2: every table the modules used to create lazily now exists from the start, owned here;
    #    labels record when they were written (wall clock) beside when they became known on the data's clock.
    2: """
CREATE TABLE IF NOT EXISTS model_events (model_id VARCHAR, event VARCHAR, happened_at TIMESTAMP, who VARCHAR,
                                         details VARCHAR);
CREATE TABLE IF NOT EXISTS drift_profiles (profile_key VARCHAR, created_at TIMESTAMP, reference VARCHAR,
                                           fingerprint VARCHAR, profile VARCHAR);
CREATE TABLE IF NOT EXISTS feature_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS case_assignments (case_id VARCHAR PRIMARY KEY, assignee VARCHAR, assigned_at TIMESTAMP,
                                             locked_by VARCHAR, locked_until TIMESTAMP);
CREATE TABLE IF NOT EXISTS case_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS customer_segments (customer_id VARCHAR, segment_id INTEGER, segment_name VARCHAR,
                                              assigned_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS segment_profiles (segment_id INTEGER, segment_name VARCHAR, customers BIGINT,
                                             profile VARCHAR, created_at TIMESTAMP);
ALTER TABLE labels ADD COLUMN IF NOT EXISTS recorded_at TIMESTAMP;
""",
    # 3: time-honest evaluation runs (python -m fraudlab evaluate), stored beside their model.
    3: """
CREATE SEQUENCE IF NOT EXISTS evaluation_seq START 1;
CREATE TABLE IF NOT EXISTS evaluations (run_id BIGINT PRIMARY KEY, model_id VARCHAR, created_at TIMESTAMP,
                                        results VARCHAR);
""",
    # 4: a case groups a customer's alerts; a decision names the alerts it covers (existing decisions covered the
    #    one transaction they were made on), carries a close reason; cases have an append-only comment thread.
    4: """
CREATE TABLE IF NOT EXISTS decision_alerts (decision_id BIGINT, alert_id VARCHAR);
INSERT INTO decision_alerts SELECT decision_id, case_id FROM decisions
    WHERE decision_id NOT IN (SELECT decision_id FROM decision_alerts);
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS close_reason VARCHAR;
CREATE SEQUENCE IF NOT EXISTS comment_seq START 1;
CREATE TABLE IF NOT EXISTS case_comments (comment_id BIGINT PRIMARY KEY, case_id VARCHAR, author VARCHAR,
                                          body VARCHAR, created_at TIMESTAMP);
""",
    # 5: the sha256 of each model file, written at registration and checked at every load (a changed file is refused).
    5: """
ALTER TABLE models ADD COLUMN IF NOT EXISTS sha256 VARCHAR;
""",
    # 6: the case tables exist (empty) from the start, so a decision, a ring or a page never meets a missing table;
    #    cases/build.py rebuilds them whole from the scores.
    6: """
CREATE TABLE IF NOT EXISTS alerts AS
    SELECT t.transaction_id AS alert_id, t.* EXCLUDE (transaction_id), NULL::DOUBLE AS score, NULL::VARCHAR AS scorer,
           NULL::VARCHAR AS model_id, NULL::TIMESTAMP AS raised_at, NULL::DOUBLE AS expected_loss,
           NULL::VARCHAR AS reasons, NULL::VARCHAR AS top_reason, NULL::VARCHAR AS segment,
           NULL::VARCHAR AS reason_family, t.transaction_id AS case_id
    FROM transactions t WHERE false;
CREATE TABLE IF NOT EXISTS cases AS
    SELECT case_id, customer_id, 0::BIGINT AS alerts, score, ts AS first_ts, ts, amount, expected_loss, raised_at,
           top_reason, reason_family, reasons, alert_id AS top_alert, card_id, merchant_id, category, channel, country,
           device_id, ip, email, scorer, model_id, segment
    FROM alerts WHERE false;
""",
    # 7: user-defined features (Feature lab): every add and drop is a row, and each one is a new feature-set version.
    7: """
CREATE TABLE IF NOT EXISTS feature_defs (name VARCHAR, version BIGINT, definition VARCHAR, created_by VARCHAR,
                                         created_at TIMESTAMP, active BOOLEAN);
""",
    # 8: people. Accounts (argon2 hashes, lock-out), every audit row names the role and how the identity was proven,
    #    and a guard override waits for a second admin's approval.
    8: """
CREATE TABLE IF NOT EXISTS users (name VARCHAR, role VARCHAR, password_hash VARCHAR, active BOOLEAN,
                                  failed_logins INTEGER, locked_until TIMESTAMP, created_at TIMESTAMP,
                                  created_by VARCHAR);
ALTER TABLE audit ADD COLUMN IF NOT EXISTS role VARCHAR;
ALTER TABLE audit ADD COLUMN IF NOT EXISTS via VARCHAR;
CREATE SEQUENCE IF NOT EXISTS override_seq START 1;
CREATE TABLE IF NOT EXISTS override_requests (request_id BIGINT, model_id VARCHAR, reason VARCHAR,
                                              requested_by VARCHAR, requested_at TIMESTAMP, decided_by VARCHAR,
                                              decided_at TIMESTAMP, status VARCHAR);
""",
    # 9: rows that arrived after later rows of their customer (fraudlab/incremental/arrivals.py): how late, and
    #    whether within the lateness horizon ('late') or beyond it ('beyond_horizon'). On-time rows have no row.
    9: """
CREATE TABLE IF NOT EXISTS arrivals (transaction_id VARCHAR, ingest_id INTEGER, arrived_at TIMESTAMP,
                                     late_by_seconds DOUBLE, status VARCHAR);
""",
    # 10: unmapped source columns the user did not choose to add to `transactions` are kept aside here, one row per
    #     non-empty value (ingest/extras.py); the transactions table never widens without consent.
    10: """
CREATE TABLE IF NOT EXISTS transaction_extras (transaction_id VARCHAR, column_name VARCHAR, value VARCHAR,
                                               ingest_id INTEGER);
""",
    # 11: the HTTP API: keys per integration (only their sha256 is kept) and every live-scored event with the answer
    #     it got (a retry with the same transaction_id gets the stored answer) and the fields the schema has no
    #     column for (kept, not dropped).
    11: """
CREATE TABLE IF NOT EXISTS api_keys (name VARCHAR PRIMARY KEY, key_sha256 VARCHAR, created_at TIMESTAMP,
                                     created_by VARCHAR, revoked_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS api_events (transaction_id VARCHAR PRIMARY KEY, received_at TIMESTAMP, key_name VARCHAR,
                                       answer VARCHAR, extra VARCHAR);
""",
    # 12: background jobs of the server (fraudlab/jobs_queue.py): one row per submitted job, its progress while it
    #     runs and how it ended, so the Jobs page and a restarted server know what happened.
    12: """
CREATE SEQUENCE IF NOT EXISTS job_seq START 1;
CREATE TABLE IF NOT EXISTS jobs (job_id BIGINT, kind VARCHAR, args VARCHAR, who VARCHAR, role VARCHAR, via VARCHAR,
                                 status VARCHAR, progress DOUBLE, message VARCHAR, submitted_at TIMESTAMP,
                                 started_at TIMESTAMP, ended_at TIMESTAMP, result VARCHAR, error VARCHAR);
""",
}
SCHEMA_VERSION = max(MIGRATIONS)
