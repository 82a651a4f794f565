"""The transition table itself: every state reachable, every open state has a way on, and the
required actions and states of the spine all exist (pure, no database)."""

from __future__ import annotations

from cityloop.cases.states import (
    BY_ACTION,
    OPEN_STATES,
    STATE_STAGE,
    STATES,
    TRANSITIONS,
    mermaid_diagram,
)

REQUIRED_ACTIONS = {
    "send_to_verify",
    "verify",
    "file",
    "reject",
    "merge",
    "coordinate",
    "dispatch",
    "pass_down",
    "return",
    "request_postpone",
    "approve_postpone",
    "refuse_postpone",
    "assign_proxy",
    "suspend",
    "resume",
    "urge",
    "supervise",
    "submit_result",
    "send_back",
    "approve_result",
    "report_check",
    "close",
    "rework",
    "refer_hearing",
    "return_visit",
    "archive",
    "open_enforcement",
    "enforcement_result",
}


def test_all_spine_actions_and_states_exist():
    assert set(BY_ACTION) >= REQUIRED_ACTIONS
    assert set(STATES) == {
        "reported",
        "verifying",
        "pending_filing",
        "rejected",
        "merged",
        "filed",
        "coordinating",
        "dispatched",
        "enforcing",
        "returned",
        "suspended",
        "result_submitted",
        "checking",
        "check_reported",
        "closed",
        "archived",
    }


def test_every_state_is_reachable_and_every_open_state_can_move_on():
    reachable = {"reported", "pending_filing", "filed"}  # where intake starts cases
    changed = True
    while changed:
        changed = False
        for t in TRANSITIONS:
            if t.sources & reachable:
                for target in t.targets:
                    if target not in ("__previous__", "__same__") and target not in reachable:
                        reachable.add(target)
                        changed = True
    assert reachable == set(STATES)
    for state in OPEN_STATES:
        assert any(
            state in t.sources and set(t.targets) - {state, "__same__"} for t in TRANSITIONS
        ), state


def test_every_open_state_but_suspended_has_a_clock_and_the_diagram_names_each_action():
    assert set(STATE_STAGE) == OPEN_STATES - {"suspended"}
    diagram = mermaid_diagram()
    for action in BY_ACTION:
        assert f" {action}" in diagram


def test_the_workflow_doc_is_generated_from_the_current_table():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("gen", root / "scripts" / "gen_workflow_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (root / "docs" / "workflow.md").read_text(encoding="utf-8") == module.render(), (
        "docs/workflow.md is stale: run scripts/gen_workflow_doc.py"
    )
