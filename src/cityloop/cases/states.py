"""The loop as data: states, stages and the one transition table.

Each row says, for an action: from which states it may be taken, where it leads, which roles
may take it, within what scope, what the payload must hold, and which guard must pass. The
service (`service.transition`) executes rows; the console shows buttons from them; the docs
draw the workflow diagram from them. Nothing else decides what may happen to a case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cityloop.workflow.flow import SCOPE_CITY as SCOPE_CITY
from cityloop.workflow.flow import Guard as Guard
from cityloop.workflow.flow import Table, Transition

if TYPE_CHECKING:
    from cityloop.workflow.engine import ActionContext

# state -> (Chinese label, English label, is_open)
STATES: dict[str, tuple[str, str, bool]] = {
    "reported": ("上报", "Reported", True),
    "verifying": ("核实中", "Verifying", True),
    "pending_filing": ("待立案", "Pending filing", True),
    "rejected": ("不予受理", "Rejected", False),
    "merged": ("已合并", "Merged", False),
    "filed": ("已立案", "Filed", True),
    "coordinating": ("协调中", "Coordinating", True),
    "dispatched": ("处置中", "Being handled", True),
    "enforcing": ("立案查处中", "Under enforcement", True),
    "returned": ("已回退", "Returned", True),
    "suspended": ("挂账", "Suspended", True),
    "result_submitted": ("已反馈", "Result submitted", True),
    "checking": ("核查中", "Checking", True),
    "check_reported": ("待结案", "Check reported", True),
    "closed": ("已结案", "Closed", False),
    "archived": ("已归档", "Archived", False),
}
OPEN_STATES = frozenset(s for s, (_, _, is_open) in STATES.items() if is_open)
# "The case is open" in SQL, with literals: the partial index of open cases
# (ix_cases_open_class_h3) serves only a query that repeats this condition word for word.
OPEN_CASE_SQL = "state NOT IN ({})".format(
    ", ".join(f"'{s}'" for s in sorted(set(STATES) - OPEN_STATES))
)

# The clock that runs while a case sits in a state (suspended: no clock).
STATE_STAGE: dict[str, str] = {
    "reported": "accept",
    "verifying": "verify",
    "pending_filing": "file",
    "filed": "dispatch",
    "returned": "dispatch",
    "coordinating": "dispatch",
    "dispatched": "handle",
    "enforcing": "enforce",
    "result_submitted": "review",
    "checking": "check",
    "check_reported": "close",
}
STAGE_LABELS: dict[str, str] = {
    "accept": "受理",
    "verify": "核实",
    "file": "立案",
    "dispatch": "派遣",
    "handle": "处置",
    "enforce": "立案查处",
    "review": "反馈审核",
    "check": "核查",
    "close": "结案",
}

CENTRE = frozenset({"operator", "shiftlead"})
DISPATCH = frozenset({"dispatcher", "shiftlead"})
SUPERVISORS = frozenset({"dispatcher", "shiftlead", "leader"})

# Scopes: who among the role-holders may act on this particular case.
SCOPE_DEPARTMENT = "department"  # only the department currently holding the case
SCOPE_GRID = "grid"  # only the inspector of the case's grid


def choose_target(action: str, payload: dict[str, Any]) -> str:
    """Rows with two targets pick one from the payload."""
    if action == "return_visit":
        return "archived" if payload.get("satisfied") else "dispatched"
    raise KeyError(action)


# -- guards: each returns None when the action may go ahead, else the reason it may not --------
def _within_return_window(ctx: ActionContext) -> str | None:
    case = ctx.case
    if case.leader_assigned:
        return "领导交办案件不得回退 (a leader-assigned case cannot be returned, R-DIS-3)"
    if case.received_at is None:
        return "case has no receipt time"
    used = ctx.calendar.working_minutes_between(case.received_at, ctx.now)
    if used > 60:
        return (
            f"回退须在接件后1个工作小时内 (returns are allowed within 1 working hour of receipt; "
            f"{used:.0f} working minutes have passed since the case was received, R-DIS-3)"
        )
    return None


def _no_pending_postponement(ctx: ActionContext) -> str | None:
    if ctx.case.postpone_request:
        return "a postponement request is already waiting for a decision"
    return None


def _pending_postponement(ctx: ActionContext) -> str | None:
    if not ctx.case.postpone_request:
        return "there is no postponement request to decide"
    return None


def _check_passed(ctx: ActionContext) -> str | None:
    if ctx.case.check_passed is not True:
        return "the inspector's check did not confirm the result: send it back for rework"
    return None


T = Transition
TRANSITIONS: tuple[Transition, ...] = (
    T(
        "send_to_verify",
        "派核实",
        "Send to verify",
        frozenset({"reported", "pending_filing"}),
        ("verifying",),
        CENTRE,
    ),
    T(
        "verify",
        "核实",
        "Verify on site",
        frozenset({"verifying"}),
        ("pending_filing",),
        frozenset({"inspector"}),
        SCOPE_GRID,
        required=("confirmed",),
    ),
    T(
        "file",
        "立案",
        "File",
        frozenset({"reported", "pending_filing"}),
        ("filed",),
        CENTRE | {"system"},
    ),
    T(
        "reject",
        "不予受理",
        "Reject",
        frozenset({"reported", "verifying", "pending_filing"}),
        ("rejected",),
        CENTRE,
        required=("reason",),
    ),
    T(
        "merge",
        "合并",
        "Merge as duplicate",
        frozenset({"reported", "verifying", "pending_filing"}),
        ("merged",),
        CENTRE,
        required=("into_case_id",),
    ),
    T("unmerge", "撤销合并", "Undo merge", frozenset({"merged"}), ("reported",), CENTRE),
    T(
        "coordinate",
        "协调派遣",
        "Coordinate",
        frozenset({"filed", "returned"}),
        ("coordinating",),
        DISPATCH,
        required=("note",),
    ),
    T(
        "dispatch",
        "派遣",
        "Dispatch",
        frozenset({"filed", "returned", "coordinating"}),
        ("dispatched",),
        DISPATCH | {"system"},
    ),
    T(
        "pass_down",
        "下派",
        "Pass down",
        frozenset({"dispatched"}),
        ("dispatched",),
        frozenset({"handler"}),
        SCOPE_DEPARTMENT,
        required=("department_id",),
    ),
    T(
        "return",
        "回退",
        "Return",
        frozenset({"dispatched"}),
        ("returned",),
        frozenset({"handler"}),
        SCOPE_DEPARTMENT,
        required=("reason",),
        guards=(_within_return_window,),
    ),
    T(
        "request_postpone",
        "申请延期",
        "Request postponement",
        frozenset({"dispatched"}),
        ("dispatched",),
        frozenset({"handler"}),
        SCOPE_DEPARTMENT,
        required=("days", "reason"),
        guards=(_no_pending_postponement,),
    ),
    T(
        "approve_postpone",
        "批准延期",
        "Approve postponement",
        frozenset({"dispatched"}),
        ("dispatched",),
        DISPATCH,
        guards=(_pending_postponement,),
    ),
    T(
        "refuse_postpone",
        "拒绝延期",
        "Refuse postponement",
        frozenset({"dispatched"}),
        ("dispatched",),
        DISPATCH,
        required=("reason",),
        guards=(_pending_postponement,),
    ),
    T(
        "assign_proxy",
        "代处理",
        "Assign proxy",
        frozenset({"dispatched"}),
        ("dispatched",),
        DISPATCH,
        required=("department_id", "reason"),
    ),
    T(
        "suspend",
        "挂账",
        "Suspend",
        frozenset({"filed", "dispatched", "coordinating"}),
        ("suspended",),
        DISPATCH,
        required=("reason",),
    ),
    T("resume", "挂账恢复", "Resume", frozenset({"suspended"}), ("__previous__",), DISPATCH),
    T(
        "feedback",
        "阶段反馈",
        "Progress feedback",
        frozenset({"dispatched", "enforcing"}),
        ("__same__",),
        frozenset({"handler"}),
        SCOPE_DEPARTMENT,
        required=("note",),
    ),
    T(
        "urge",
        "催办",
        "Urge",
        frozenset({"dispatched", "enforcing"}),
        ("__same__",),
        SUPERVISORS | {"system"},
    ),
    T(
        "supervise",
        "督办",
        "Supervise",
        frozenset({"dispatched", "enforcing"}),
        ("__same__",),
        frozenset({"shiftlead", "leader"}),
        required=("note",),
    ),
    # R-HD-5: the enforcement case made from this case (enforcement.service) carries it.
    T(
        "open_enforcement",
        "立案查处",
        "Open enforcement case",
        frozenset({"dispatched"}),
        ("enforcing",),
        frozenset({"handler"}),
        SCOPE_DEPARTMENT,
        required=("violation_code", "party_id"),
    ),
    T(
        "enforcement_result",
        "查处结果反馈",
        "Enforcement result",
        frozenset({"enforcing"}),
        ("result_submitted",),
        frozenset({"system"}),
        required=("result",),
    ),
    T(
        "submit_result",
        "处置反馈",
        "Submit result",
        frozenset({"dispatched"}),
        ("result_submitted",),
        frozenset({"handler"}),
        SCOPE_DEPARTMENT,
        required=("result", "method", "photos"),
    ),
    T(
        "send_back",
        "退回重办",
        "Send back",
        frozenset({"result_submitted"}),
        ("dispatched",),
        DISPATCH,
        required=("reason",),
    ),
    T(
        "approve_result",
        "审核通过",
        "Approve result",
        frozenset({"result_submitted"}),
        ("checking",),
        DISPATCH,
    ),
    T(
        "report_check",
        "核查反馈",
        "Report check",
        frozenset({"checking"}),
        ("check_reported",),
        frozenset({"inspector"}),
        SCOPE_GRID,
        required=("passed", "photos"),
    ),
    T(
        "close",
        "结案",
        "Close",
        frozenset({"check_reported"}),
        ("closed",),
        CENTRE,
        guards=(_check_passed,),
    ),
    T(
        "rework",
        "返工",
        "Rework",
        frozenset({"check_reported"}),
        ("dispatched",),
        CENTRE,
        required=("reason",),
    ),
    T(
        "refer_hearing",
        "协调听证",
        "Refer to hearing",
        frozenset({"dispatched", "result_submitted", "check_reported"}),
        ("coordinating",),
        frozenset({"shiftlead"}),
        required=("note",),
    ),
    T(
        "return_visit",
        "回访",
        "Return visit",
        frozenset({"closed"}),
        ("archived", "dispatched"),
        CENTRE | {"public"},
        required=("satisfied",),
        choose=lambda payload: choose_target("return_visit", payload),
    ),
    T("archive", "归档", "Archive", frozenset({"closed"}), ("archived",), CENTRE | {"system"}),
)

TABLE = Table(
    name="case",
    title="案件闭环 (the case loop)",
    states=STATES,
    transitions=TRANSITIONS,
    state_stage=STATE_STAGE,
    stage_labels=STAGE_LABELS,
)
BY_ACTION: dict[str, Transition] = TABLE.by_action
ACTIONS_FROM: dict[str, list[Transition]] = TABLE.actions_from

# Who may start a case in which state, by source (the minimal intake; R-IN-1, R-AC-1).
INITIAL_STATE_BY_SOURCE_ROLE: dict[str, str] = {
    "inspector": "pending_filing",
    "leader": "filed",
}
METHODS_721 = {"service": "服务", "management": "管理", "enforcement": "执法"}


def state_label(state: str | None, lang: str = "zh") -> str:
    if state is None:
        return ""
    zh, en, _ = STATES[state]
    return en if lang == "en" else zh


# The states a suspended case may resume to (drawn for `__previous__`).
RESUMABLE = ("filed", "dispatched", "coordinating")


def mermaid_diagram() -> str:
    """The workflow drawn from the table (docs/workflow.md is generated from this)."""
    return TABLE.mermaid(RESUMABLE)
