"""What a new city starts with: a rule for every step of the loop that someone must act on,
the clock's warnings, and the citizen's three messages (filed, rejected, closed). Edited in
the console (`/admin/notifications`); the first edit copies these rows into the table."""

from __future__ import annotations

from dataclasses import dataclass

# The words a template may use: anything else is refused when the template is saved.
PLACEHOLDERS: dict[str, str] = {
    "ticket": "受理编号",
    "event": "事件名称",
    "class_name": "问题类别",
    "address": "地址",
    "department": "当前承办单位",
    "reason": "原因",
    "note": "说明",
    "due_at": "处置时限",
    "stage": "阶段",
    "state": "状态",
    "urgency": "紧急程度",
    "link": "链接",
}

CHANNELS = ("inbox", "sms", "email", "wechat")


@dataclass(frozen=True)
class DefaultTemplate:
    code: str
    title: str
    body: str
    sms_template_id: str | None = None
    wechat_template_id: str | None = None


TEMPLATES: dict[str, DefaultTemplate] = {
    t.code: t
    for t in (
        DefaultTemplate(
            "case_assigned",
            "新派遣案件 {ticket}",
            "{class_name}：{address}，处置时限 {due_at}。",
            "SMS_CASE_ASSIGNED",
        ),
        DefaultTemplate(
            "case_passed_down",
            "案件下派 {ticket}",
            "{class_name}：{address}，请于 {due_at} 前处置。",
            "SMS_CASE_ASSIGNED",
        ),
        DefaultTemplate(
            "case_urged", "催办 {ticket}", "{class_name}：{address}。{note}", "SMS_CASE_URGED"
        ),
        DefaultTemplate(
            "case_supervised",
            "督办 {ticket}",
            "{class_name}：{address}。督办意见：{note}",
            "SMS_CASE_URGED",
        ),
        DefaultTemplate(
            "case_sent_back",
            "退回重办 {ticket}",
            "{class_name}：{address}。原因：{reason}",
            "SMS_CASE_ASSIGNED",
        ),
        DefaultTemplate("case_returned", "案件回退 {ticket}", "{department}回退：{reason}"),
        DefaultTemplate(
            "result_submitted",
            "处置完成待审核 {ticket}",
            "{department}已反馈处置结果：{class_name}。",
        ),
        DefaultTemplate(
            "postpone_requested", "延期申请 {ticket}", "{department}申请延期：{reason}"
        ),
        DefaultTemplate(
            "verify_task",
            "核实任务 {ticket}",
            "请核实：{class_name}，{address}。",
            "SMS_INSPECTOR_TASK",
        ),
        DefaultTemplate(
            "check_task",
            "核查任务 {ticket}",
            "请核查处置结果：{class_name}，{address}。",
            "SMS_INSPECTOR_TASK",
        ),
        DefaultTemplate(
            "clock_warning",
            "即将超时 {ticket}",
            "{stage}即将到期（{due_at}）：{class_name}，{address}。",
        ),
        DefaultTemplate(
            "clock_overdue",
            "已超时 {ticket}",
            "{stage}已超期（{due_at}）：{class_name}，{address}。",
        ),
        DefaultTemplate(
            "citizen_filed",
            "您的反映已受理",
            "您反映的问题已受理，受理编号 {ticket}，可凭编号查询进度：{link}",
            "SMS_CITIZEN_FILED",
            "TPL_CITIZEN_FILED",
        ),
        DefaultTemplate(
            "citizen_rejected",
            "您的反映不予受理",
            "受理编号 {ticket}：不予受理。原因：{reason}",
            "SMS_CITIZEN_REJECTED",
            "TPL_CITIZEN_REJECTED",
        ),
        DefaultTemplate(
            "citizen_closed",
            "您的反映已办结",
            "受理编号 {ticket} 已办结，欢迎评价：{link}",
            "SMS_CITIZEN_CLOSED",
            "TPL_CITIZEN_CLOSED",
        ),
    )
}


@dataclass(frozen=True)
class DefaultRule:
    event: str
    recipient: str
    channels: tuple[str, ...]
    template: str
    role: str | None = None
    urgencies: str = ""
    quiet_hours: bool = True


RULES: tuple[DefaultRule, ...] = (
    DefaultRule("dispatch", "department", ("inbox", "sms"), "case_assigned"),
    DefaultRule("pass_down", "department", ("inbox", "sms"), "case_passed_down"),
    DefaultRule("assign_proxy", "department", ("inbox", "sms"), "case_assigned"),
    DefaultRule("urge", "department", ("inbox", "sms"), "case_urged"),
    DefaultRule("supervise", "department", ("inbox", "sms"), "case_supervised"),
    DefaultRule("send_back", "department", ("inbox", "sms"), "case_sent_back"),
    DefaultRule("approve_postpone", "department", ("inbox",), "case_assigned"),
    DefaultRule("refuse_postpone", "department", ("inbox",), "case_sent_back"),
    DefaultRule("return", "role", ("inbox",), "case_returned", role="dispatcher"),
    DefaultRule("submit_result", "role", ("inbox",), "result_submitted", role="dispatcher"),
    DefaultRule("request_postpone", "role", ("inbox",), "postpone_requested", role="dispatcher"),
    DefaultRule("send_to_verify", "grid", ("inbox", "sms"), "verify_task"),
    DefaultRule("approve_result", "grid", ("inbox", "sms"), "check_task"),
    DefaultRule("clock_warning", "department", ("inbox",), "clock_warning"),
    DefaultRule("clock_overdue", "department", ("inbox", "sms"), "clock_overdue"),
    DefaultRule("clock_overdue", "role", ("inbox",), "clock_overdue", role="shiftlead"),
    DefaultRule("report", "reporter", ("sms", "wechat"), "citizen_filed"),
    DefaultRule("reject", "reporter", ("sms", "wechat"), "citizen_rejected", quiet_hours=True),
    DefaultRule("close", "reporter", ("sms", "wechat"), "citizen_closed"),
)
