"""The administrative penalty procedure as data (flow "enforcement", 行政处罚法 2021).

Rows of the same shape as the case loop's (`workflow.flow.Transition`), run by the same
engine. Articles cited: 33 (不予处罚, 首违不罚), 42 (two officers), 44-45 (事先告知, 陈述申辩),
51-52 (简易程序), 57 (集体讨论), 58 (法制审核), 60 (90 days), 61 (送达 within 7 days), 63-64
(听证), 67 (payment within 15 days), 72 (加处罚款, 强制执行). The periods themselves are rows
of `LegalPeriod` (natural or working days), not numbers here.
"""

from __future__ import annotations

from cityloop.workflow.flow import Table, Transition

STATES: dict[str, tuple[str, str, bool]] = {
    "registered": ("待立案", "Registered", True),
    "investigating": ("调查取证", "Investigating", True),
    "case_review": ("案件审核", "Case review", True),
    "legal_review": ("法制审核", "Legal review", True),
    "ready": ("待告知", "Ready to notify", True),
    "notified": ("告知(陈述申辩)", "Notified", True),
    "hearing": ("听证", "Hearing", True),
    "decided": ("已决定待送达", "Decided", True),
    "executing": ("执行中", "Executing", True),
    "court": ("申请强制执行", "Court enforcement", True),
    "executed": ("已执行", "Executed", True),
    "not_punished": ("不予处罚", "Not punished", True),
    "closed": ("已结案", "Closed", False),
    "archived": ("已归档", "Archived", False),
    "not_filed": ("不予立案", "Not filed", False),
    "withdrawn": ("已撤案", "Withdrawn", False),
    "transferred": ("已移送", "Transferred", False),
    "revoked": ("已撤销", "Revoked", False),
}
# The states where the enforcement case has ended for the complaint it came from.
ENDED = frozenset({"closed", "archived", "not_filed", "withdrawn", "transferred", "revoked"})

# The clock of each state: a LegalPeriod code (the due time of "decide" runs from 立案, of
# "statement" from 告知, of "pay" from 送达).
STATE_STAGE: dict[str, str] = {
    "registered": "file",
    "investigating": "decide",
    "case_review": "decide",
    "legal_review": "decide",
    "ready": "decide",
    "notified": "statement",
    "hearing": "decide",
    "decided": "deliver",
    "executing": "pay",
    "executed": "close",
    "not_punished": "close",
}
STAGE_LABELS: dict[str, str] = {
    "file": "立案",
    "decide": "作出决定",
    "statement": "陈述申辩",
    "deliver": "送达",
    "pay": "缴纳罚款",
    "close": "结案",
}

OFFICER = frozenset({"officer"})
CHIEF = frozenset({"enforcement_chief"})
REVIEWERS = frozenset({"legal_reviewer", "enforcement_chief"})
STAFF = OFFICER | REVIEWERS

SCOPE_SQUAD = "squad"  # officers of the squad holding the case
PRE_DECISION = frozenset(
    {"investigating", "case_review", "legal_review", "ready", "notified", "hearing"}
)
DECIDED = frozenset({"decided", "executing", "court", "executed", "closed", "archived"})

T = Transition
TRANSITIONS: tuple[Transition, ...] = (
    T(
        "file",
        "立案",
        "File",
        frozenset({"registered"}),
        ("investigating",),
        OFFICER | CHIEF,
        SCOPE_SQUAD,
    ),
    T(
        "decline_filing",
        "不予立案",
        "Decline to file",
        frozenset({"registered"}),
        ("not_filed",),
        CHIEF,
        required=("reason",),
    ),
    T(
        "add_evidence",
        "调查取证",
        "Add evidence",
        frozenset({"registered", "investigating"}),
        ("__same__",),
        OFFICER,
        SCOPE_SQUAD,
        required=("officer_ids",),
    ),
    T(
        "order_rectification",
        "责令改正",
        "Order rectification",
        frozenset({"investigating"}),
        ("investigating",),
        OFFICER,
        SCOPE_SQUAD,
        required=("days", "officer_ids"),
    ),
    T(
        "recheck",
        "复查",
        "Re-check",
        frozenset({"investigating"}),
        ("investigating",),
        OFFICER,
        SCOPE_SQUAD,
        required=("rectified", "officer_ids"),
    ),
    T(
        "submit_review",
        "提请审核",
        "Submit for review",
        frozenset({"investigating"}),
        ("case_review",),
        OFFICER,
        SCOPE_SQUAD,
    ),
    T(
        "review",
        "案件审核",
        "Case review",
        frozenset({"case_review"}),
        ("legal_review", "ready", "investigating"),
        REVIEWERS,
        required=("approved",),
    ),
    T(
        "legal_review",
        "法制审核",
        "Legal review",
        frozenset({"legal_review"}),
        ("ready", "investigating"),
        REVIEWERS,
        required=("approved",),
    ),
    T(
        "discuss",
        "集体讨论",
        "Collective discussion",
        frozenset({"case_review", "legal_review", "ready", "notified"}),
        ("__same__",),
        CHIEF,
        required=("reason", "conclusion"),
    ),
    T(
        "notify",
        "事先告知",
        "Prior notice",
        frozenset({"ready"}),
        ("notified",),
        OFFICER,
        SCOPE_SQUAD,
    ),
    T(
        "record_statement",
        "陈述申辩",
        "Record statement",
        frozenset({"notified"}),
        ("notified",),
        OFFICER,
        SCOPE_SQUAD,
        required=("waived",),
    ),
    T(
        "request_hearing",
        "申请听证",
        "Hearing requested",
        frozenset({"notified"}),
        ("hearing",),
        OFFICER,
        SCOPE_SQUAD,
    ),
    T(
        "schedule_hearing",
        "听证通知",
        "Schedule hearing",
        frozenset({"hearing"}),
        ("hearing",),
        REVIEWERS,
        required=("hearing_at",),
    ),
    T(
        "hold_hearing",
        "举行听证",
        "Hold hearing",
        frozenset({"hearing"}),
        ("notified",),
        REVIEWERS,
        required=("record",),
    ),
    T(
        "request_extension",
        "申请延期",
        "Request extension",
        PRE_DECISION,
        ("__same__",),
        OFFICER,
        SCOPE_SQUAD,
        required=("days", "reason"),
    ),
    T("grant_extension", "批准延期", "Grant extension", PRE_DECISION, ("__same__",), CHIEF),
    T(
        "decide",
        "处罚决定",
        "Decide",
        frozenset({"notified"}),
        ("decided",),
        OFFICER | CHIEF,
        SCOPE_SQUAD,
        required=("officer_ids",),
    ),
    T(
        "decide_on_site",
        "当场处罚",
        "Decide on site",
        frozenset({"registered"}),
        ("executing", "executed"),
        OFFICER,
        SCOPE_SQUAD,
        required=("officer_ids",),
    ),
    T(
        "deliver",
        "送达",
        "Deliver",
        frozenset({"decided"}),
        ("executing", "executed"),
        OFFICER,
        SCOPE_SQUAD,
        required=("method",),
    ),
    T(
        "record_payment",
        "缴纳罚款",
        "Record payment",
        frozenset({"executing", "court"}),
        ("executing", "executed"),
        OFFICER | CHIEF,
        required=("amount",),
    ),
    T(
        "grant_instalments",
        "分期/延期缴纳",
        "Grant instalments",
        frozenset({"executing"}),
        ("executing",),
        CHIEF,
        required=("days", "reason"),
    ),
    T(
        "apply_court",
        "申请强制执行",
        "Apply to court",
        frozenset({"executing"}),
        ("court",),
        CHIEF,
        required=("note",),
    ),
    T(
        "court_result",
        "强制执行完毕",
        "Court enforced",
        frozenset({"court"}),
        ("executed",),
        CHIEF,
        required=("note",),
    ),
    T(
        "no_penalty",
        "不予处罚",
        "No penalty",
        frozenset({"investigating", "case_review", "legal_review", "ready", "notified"}),
        ("not_punished",),
        REVIEWERS,
        required=("basis", "reason"),
    ),
    T("close", "结案", "Close", frozenset({"executed", "not_punished"}), ("closed",), CHIEF),
    T(
        "withdraw",
        "撤案",
        "Withdraw",
        frozenset({"registered"}) | PRE_DECISION,
        ("withdrawn",),
        CHIEF,
        required=("reason",),
    ),
    T(
        "transfer",
        "移送",
        "Transfer",
        frozenset({"registered", "investigating"}),
        ("transferred",),
        CHIEF,
        required=("authority", "reason"),
    ),
    T(
        "revoke",
        "撤销决定",
        "Revoke decision",
        DECIDED - {"archived"},
        ("revoked",),
        CHIEF,
        required=("reason",),
    ),
    T(
        "withhold_disclosure",
        "暂不公示",
        "Withhold disclosure",
        DECIDED,
        ("__same__",),
        REVIEWERS,
        required=("reason",),
    ),
    T(
        "archive",
        "归档",
        "Archive",
        frozenset({"closed", "not_filed", "withdrawn", "transferred", "revoked"}),
        ("archived",),
        OFFICER | CHIEF | {"system"},
    ),
)

TABLE = Table(
    name="enforcement",
    title="行政处罚案件 (the enforcement procedure)",
    states=STATES,
    transitions=TRANSITIONS,
    state_stage=STATE_STAGE,
    stage_labels=STAGE_LABELS,
)
BY_ACTION = TABLE.by_action
OPEN_STATES = TABLE.open_states


def mermaid_diagram() -> str:
    return TABLE.mermaid()
