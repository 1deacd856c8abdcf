"""AppTest of the Fraud rings page on the ready workspace (bundled sample, scored)."""
from __future__ import annotations

from fraudlab import cases, rings
from fraudlab.workspace import Workspace


def _texts(at) -> str:
    parts = [e.value for e in at.caption] + [e.value for e in at.markdown] + [e.value for e in at.info]
    parts += [e.value for e in at.success] + [e.value for e in at.warning]
    return "\n".join(str(p) for p in parts)


def _frame(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_page_ranks_rings_and_draws_the_top_one(app_test):
    at = app_test("pages/rings.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "Fraud rings"
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Rings"].replace(",", "")) >= 7 and int(metrics["Hubs left out"]) >= 20
    hubs = _frame(at, "customers")
    assert len(hubs) >= 20 and (hubs["customers"] > 20).all()
    table = _frame(at, "ring_score")
    assert table["ring_id"].tolist()[:3] == [1, 2, 3] and "part_time" in table.columns
    assert at.selectbox[0].value == 1
    assert "customers," in _texts(at) and "shared identifiers" in _texts(at)
    members = _frame(at, "top_case")
    assert {"customer_id", "top_case", "last_card"} <= set(members.columns)
    assert members["last_card"].dropna().str.startswith("•••• ").all()
    # another ring from the list
    at.selectbox[0].set_value(2).run()
    assert not at.exception and "Ring 2" in _texts(at)


def test_decide_whole_ring_marks_open_cases(app_test, app_workspace):
    at = app_test("pages/rings.py")
    ws = Workspace(app_workspace)
    customers = rings.find_rings(ws).customers_of(1)
    open_ids = rings.ring_case_ids(ws, customers, "cases")
    ws.close()
    assert open_ids
    at.radio[0].set_value("fraud")
    at.radio[1].set_value("cases")
    at.text_input[0].set_value("same device farm")
    at.button[-1].click().run()
    assert not at.exception, at.exception
    ws = Workspace(app_workspace)
    assert cases.current_decisions(ws, open_ids).empty  # nothing is decided before the confirmation
    ws.close()
    at.button(key="ring_confirm").click().run()
    assert not at.exception, at.exception
    assert f"Marked {len(open_ids):,} transactions of ring 1 as **fraud**" in _texts(at)
    ws = Workspace(app_workspace)
    decided = cases.current_decisions(ws, open_ids)
    assert len(decided) == len(open_ids) and set(decided["decision"]) == {"fraud"}
    assert rings.ring_case_ids(ws, customers, "cases") == []  # no open cases left
    ws.close()


def test_settings_and_empty_state(app_test):
    at = app_test("pages/rings.py")
    at.number_input[1].set_value(1000).run()  # minimum ring size above every ring
    assert not at.exception
    assert "No rings" in _texts(at)
    at.number_input[1].set_value(2).run()
    at.number_input[0].set_value(100).run()  # raising the hub threshold lets hubs glue legitimate customers
    assert not at.exception
    assert int(at.metric[2].value) < 20
    at.number_input[0].set_value(20).run()
    at.number_input[2].set_value(1.0).run()  # also link customers at the same merchant within an hour
    assert not at.exception, at.exception
    assert (_frame(at, "ring_score")["size"] >= 2).all()
    at.multiselect[0].set_value([]).run()
    at.number_input[2].set_value(0.0).run()
    assert "no identifier kinds selected" in "\n".join(e.value for e in at.error)
