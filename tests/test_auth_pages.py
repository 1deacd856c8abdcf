"""Pages by role through AppTest: each role's navigation holds exactly the pages its role sees, those pages run
without an exception, and the controls a role may not use are not offered (the library refuses them anyway)."""
from __future__ import annotations

import pytest
from people import admin, analyst, manager, reviewer, scientist

from fraudlab.auth.permissions import PAGES, can_see

PEOPLE = {"analyst": analyst("al"), "reviewer": reviewer("ray"), "manager": manager("meg"),
          "data_scientist": scientist("sci"), "admin": admin("ada")}


def _buttons(at) -> set[str]:
    return {b.label for b in at.button}


@pytest.mark.parametrize("role", sorted(PEOPLE))
def test_the_navigation_holds_only_the_pages_of_the_role(app_test, role):
    actor = PEOPLE[role]
    at = app_test(actor=actor)
    assert not at.exception
    for stem in PAGES:
        if not can_see(actor, stem):
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(f"pages/{stem}.py")


def test_a_manager_reads_cases_but_is_offered_no_decision(app_test):
    at = app_test("pages/queue.py", actor=manager())
    assert not at.exception
    assert "Take the next case" not in _buttons(at)
    assert any("Assign" in e.label for e in at.expander)  # assignment is the manager's


def test_an_analyst_is_offered_no_bulk_decision_and_no_reopen(app_test):
    at = app_test("pages/case.py", actor=analyst())
    assert not at.exception
    at = app_test("pages/queue.py", actor=analyst())
    assert "Take the next case" in _buttons(at)
    assert not any("Assign" in e.label for e in at.expander)


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(PEOPLE))
def test_every_page_of_the_role_runs(app_test, role):
    actor = PEOPLE[role]
    at = app_test(actor=actor)
    for stem in PAGES:
        if can_see(actor, stem):
            at.switch_page(f"pages/{stem}.py")
            at.run()
            assert not at.exception, f"{role} on {stem}: {at.exception[0].value[:300]}"
