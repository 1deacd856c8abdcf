"""People and permissions: the role × action matrix in the library, four eyes, password hashes and lock-out, demo
and login modes, OpenID Connect roles, the users command line."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from people import admin, analyst, manager, reviewer, scientist

from fraudlab import cases, drift, labels, overrides, pipeline, promotion, registry
from fraudlab.api.keys import create_key
from fraudlab.auth import users
from fraudlab.auth.actors import DEMO, ROLES, SYSTEM, Actor
from fraudlab.auth.permissions import ACTIONS, PAGES, NotAllowed, can, can_see
from fraudlab.auth.session import AuthSettings, expired, login_mode, network_refusal, oidc_actor
from fraudlab.errors import FraudlabError
from fraudlab.featurelab import drop_definition
from fraudlab.workspace import Workspace

PASSWORD = "correct horse battery"


def _open_cases(ws: Workspace, n: int) -> list[str]:
    return cases.queue(ws, cases.QueueFilter(statuses=("open",)), limit=n)[0]["case_id"].tolist()


def _closed_case(ws: Workspace) -> str:
    case_id = _open_cases(ws, 1)[0]
    cases.decide(ws, case_id, "fraud", analyst("setup"))
    return case_id


# Each library action, called the way the pages call it. An allowed call may still fail for its own reasons
# (nothing to roll back, no such feature): only NotAllowed means the role was refused.
ACTION_CALLS = {
    "decide": lambda ws, a: cases.decide(ws, _open_cases(ws, 1)[0], "fraud", a),
    "bulk_decide": lambda ws, a: cases.decide_many(ws, _open_cases(ws, 2), "legitimate", a),
    "reopen": lambda ws, a: cases.decide(ws, _closed_case(ws), "reopen", a, "chargeback disputed"),
    "comment": lambda ws, a: cases.add_comment(ws, _open_cases(ws, 1)[0], a, "called the customer"),
    "take_case": lambda ws, a: cases.take_case(ws, _open_cases(ws, 1)[0], a),
    "assign": lambda ws, a: cases.assign_round_robin(ws, ["ann"], 1, who=a),
    "qa_review": lambda ws, a: cases.send_for_review(ws, [_closed_case(ws)], a),
    "resegment": lambda ws, a: pipeline.resegment(ws, k=2, who=a),
    "train": lambda ws, a: pipeline.retrain(ws, train_from=datetime(2100, 1, 1), who=a),
    "promote": lambda ws, a: promotion.promote(ws, registry.champion(ws).model_id, a),
    "rollback": lambda ws, a: promotion.rollback(ws, a, "test"),
    "guard_override": lambda ws, a: overrides.approve_override(ws, a, 999),
    "edit_features": lambda ws, a: drop_definition(ws, "no_such_feature", a),
    "run_drift": lambda ws, a: drift.save_run(ws, drift.load_run(ws, 1), a),
    "load_data": lambda ws, a: pipeline.load(ws, "/nonexistent/file.csv", who=a),
    "clear_data": lambda ws, a: labels.delete_all(ws, a),
    "manage_users": lambda ws, a: users.add_user(ws, a, "newbie", "analyst", PASSWORD),
    "refresh": lambda ws, a: pipeline.refresh(ws, who=a),
    "manage_api_keys": lambda ws, a: create_key(ws, "checkout", a),
}
PEOPLE = {"analyst": analyst("al"), "reviewer": reviewer("ray"), "manager": manager("meg"),
          "data_scientist": scientist("sci"), "admin": admin("ada")}


def test_every_action_and_role_is_in_the_matrix():
    assert set(ACTION_CALLS) == set(ACTIONS) - {"decide_escalated"}
    assert set(PEOPLE) == set(ROLES)
    assert {stem for stem in PAGES} >= {"home", "queue", "case", "models", "data", "users", "audit"}


@pytest.mark.parametrize("action", sorted(ACTION_CALLS))
def test_each_role_may_do_what_its_role_allows_and_nothing_else(ws, action):
    users.add_user(ws, None, "root", "admin", PASSWORD)  # someone must exist before users are managed
    for role, actor in PEOPLE.items():
        refused_before = ws.scalar("SELECT count(*) FROM audit WHERE action = 'refused'")
        if role in ACTIONS[action]:
            try:
                ACTION_CALLS[action](ws, actor)
            except NotAllowed as exc:
                pytest.fail(f"{role} was refused {action}: {exc}")
            except FraudlabError:
                pass  # allowed through the check; the action itself had nothing to do
        else:
            with pytest.raises(NotAllowed, match="Nothing was changed"):
                ACTION_CALLS[action](ws, actor)
            row = ws.df("SELECT who, role, details FROM audit WHERE action = 'refused' ORDER BY audit_id DESC LIMIT 1")
            assert ws.scalar("SELECT count(*) FROM audit WHERE action = 'refused'") == refused_before + 1
            assert (row["who"].iloc[0], row["role"].iloc[0]) == (actor.name, role)
            assert json.loads(row["details"].iloc[0])["action"] in (action, "decide", "reopen")


def test_no_write_without_an_authenticated_actor(ws):
    with pytest.raises(NotAllowed, match="logged-in user"):
        cases.decide(ws, _open_cases(ws, 1)[0], "fraud", "head-of-fraud")  # a typed name is not an identity
    with pytest.raises(TypeError, match="authenticated Actor"):
        with ws.write("forged", "head-of-fraud"):
            pass
    assert not ws.scalar("SELECT count(*) FROM decisions WHERE analyst = 'head-of-fraud'")


def test_system_may_only_bring_the_workspace_up_to_date():
    assert can(SYSTEM, "refresh") and not can(SYSTEM, "decide") and not can(SYSTEM, "load_data")
    assert can(DEMO, "decide") and not can(DEMO, "load_data") and not can(DEMO, "manage_users")
    assert can_see(analyst(), "queue") and not can_see(analyst(), "feature_lab") and not can_see(manager(), "data")


def test_four_eyes_on_a_guard_override(ws):
    users.add_user(ws, None, "root", "admin", PASSWORD)
    with ws.write("override_requested", admin("ada")) as cur:
        cur.execute("INSERT INTO override_requests VALUES (1, ?, 'labels reviewed', 'ada', now(), NULL, NULL, "
                    "'pending')", [registry.champion(ws).model_id])
    with pytest.raises(NotAllowed, match="second admin"):
        overrides.approve_override(ws, admin("ada"), 1)
    with pytest.raises(NotAllowed):
        overrides.approve_override(ws, scientist("sci"), 1)
    overrides.reject_override(ws, admin("bea"), 1)
    assert overrides.pending_overrides(ws).empty
    assert ws.scalar("SELECT decided_by FROM override_requests WHERE request_id = 1") == "bea"


def test_nobody_changes_their_own_role_or_disables_themselves(empty_ws):
    users.add_user(empty_ws, None, "root", "admin", PASSWORD)
    root = Actor("root", "admin")
    with pytest.raises(NotAllowed, match="own role"):
        users.set_role(empty_ws, root, "root", "analyst")
    with pytest.raises(NotAllowed, match="own account"):
        users.disable_user(empty_ws, root, "root")
    users.add_user(empty_ws, root, "al", "analyst", PASSWORD)
    with pytest.raises(NotAllowed):
        users.set_role(empty_ws, Actor("al", "analyst"), "al", "admin")  # nor raise themselves
    users.set_role(empty_ws, root, "al", "reviewer")
    assert users.user_role(empty_ws, "al") == "reviewer"


def test_passwords_are_hashed_and_repeated_failures_lock_the_account(empty_ws):
    with pytest.raises(FraudlabError, match="first account must be an admin"):
        users.add_user(empty_ws, None, "al", "analyst", PASSWORD)
    users.add_user(empty_ws, None, "root", "admin", PASSWORD)
    stored = empty_ws.scalar("SELECT password_hash FROM users WHERE name = 'root'")
    assert stored.startswith("$argon2") and PASSWORD not in stored
    assert PASSWORD not in empty_ws.df("SELECT details FROM audit")["details"].str.cat()
    assert users.authenticate(empty_ws, "root", PASSWORD) == Actor("root", "admin", via="password")
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(users.LoginFailed):
            users.authenticate(empty_ws, "root", "wrong password")
    with pytest.raises(users.LoginFailed):  # locked now, even with the right password
        users.authenticate(empty_ws, "root", PASSWORD)
    with pytest.raises(users.LoginFailed) as unknown:
        users.authenticate(empty_ws, "nobody", PASSWORD)
    assert "locked" in str(unknown.value)  # the same message whether the account exists or not
    assert empty_ws.scalar("SELECT count(*) FROM audit WHERE action = 'login_failed'") == users.MAX_FAILURES + 2
    users.reset_password(empty_ws, Actor("ops", "admin", via="cli"), "root", "another long password")
    assert users.authenticate(empty_ws, "root", "another long password").role == "admin"
    with pytest.raises(FraudlabError, match="at least"):
        users.add_user(empty_ws, Actor("root", "admin"), "shorty", "analyst", "short")


def test_a_disabled_account_cannot_log_in(empty_ws):
    users.add_user(empty_ws, None, "root", "admin", PASSWORD)
    users.add_user(empty_ws, Actor("root", "admin"), "al", "analyst", PASSWORD)
    users.disable_user(empty_ws, Actor("root", "admin"), "al")
    with pytest.raises(users.LoginFailed):
        users.authenticate(empty_ws, "al", PASSWORD)
    assert [u.name for u in users.list_users(empty_ws) if not u.active] == ["al"]


def test_demo_until_other_data_or_an_account_or_required(ws, loaded_ws):
    assert login_mode(ws, oidc=False, settings=AuthSettings()) == "demo"
    assert login_mode(ws, oidc=False, settings=AuthSettings(required=True)) == "setup"
    assert login_mode(ws, oidc=True, settings=AuthSettings()) == "login"
    assert login_mode(loaded_ws, oidc=False, settings=AuthSettings()) == "setup"  # data that is not the sample
    users.add_user(ws, None, "root", "admin", PASSWORD)
    assert login_mode(ws, oidc=False, settings=AuthSettings()) == "login"


def test_network_address_needs_login_and_sessions_time_out():
    assert network_refusal("0.0.0.0", "demo") and network_refusal("", "demo")
    assert network_refusal("127.0.0.1", "demo") is None and network_refusal("0.0.0.0", "login") is None
    now = datetime(2026, 1, 1, 12)
    assert expired(now - timedelta(minutes=61), now, AuthSettings(session_minutes=60))
    assert not expired(now - timedelta(minutes=5), now, AuthSettings(session_minutes=60))


def test_openid_connect_roles_come_from_the_claim_or_the_users_table(empty_ws):
    settings = AuthSettings(role_claim="groups")
    assert oidc_actor(empty_ws, {"email": "kim@bank.example", "groups": ["staff", "reviewer"]}, settings) == \
        Actor("kim@bank.example", "reviewer", via="oidc")
    assert oidc_actor(empty_ws, {"email": "lee@bank.example"}, settings) is None  # no role: may not act
    users.add_user(empty_ws, None, "root", "admin", PASSWORD)
    users.add_user(empty_ws, Actor("root", "admin"), "lee@bank.example", "manager", None)
    assert oidc_actor(empty_ws, {"email": "lee@bank.example"}, settings).role == "manager"


def test_users_command_line_reads_the_password_twice_from_stdin(workspace_env):
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fraudlab", "users", *args], input=stdin, text=True,
                              capture_output=True, timeout=120)

    assert run("add", "root", "--role", "admin", "--password-stdin", stdin="one long password\nanother\n"
               ).returncode == 2
    done = run("add", "root", "--role", "admin", "--password-stdin", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert run("add", "al", "--role", "analyst", "--password-stdin", stdin=f"{PASSWORD}\n{PASSWORD}\n").returncode == 0
    listed = run("list").stdout
    assert "root" in listed and "analyst" in listed
    ws = Workspace(workspace_env)
    try:
        assert users.authenticate(ws, "al", PASSWORD).role == "analyst"
        who = ws.df("SELECT who, via FROM audit WHERE action = 'user_added' ORDER BY audit_id")
        assert who["via"].tolist()[-1] == "cli"  # the command line acts as the operating-system user
    finally:
        ws.close()
