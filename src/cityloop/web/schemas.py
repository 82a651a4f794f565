"""Forms of the pages: which fields each action's form has, and turning what a person typed
into the payload the services take. A bad field gives a message under that field and the form
comes back with everything typed still in it (`FormState`).

Which fields an action *requires* comes from the transition table (`Transition.required`), so
the forms cannot drift from the rules; this module only adds how each field is typed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from cityloop.cases.states import BY_ACTION, METHODS_721
from cityloop.web.i18n import translate


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # text | textarea | int | number | bool | department | lower_department
    # | urgency | method | photos | hidden_case
    label: str  # i18n key
    optional_label: bool = False


@dataclass
class FormState:
    """What was typed into one form and what was wrong with it."""

    form: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def error(self, name: str) -> str:
        return self.errors.get(name, "")

    @property
    def ok(self) -> bool:
        return not self.errors


def _f(name: str, kind: str, label: str | None = None) -> FieldSpec:
    return FieldSpec(name, kind, label or name)


REASON = _f("reason", "textarea")
NOTE = _f("note", "textarea")

# The fields of each action's form, in the order shown. Required-ness comes from the table.
ACTION_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "send_to_verify": (),
    "verify": (_f("confirmed", "bool"), _f("photos", "photos")),
    "file": (_f("urgency", "urgency"),),
    "reject": (REASON,),
    "merge": (_f("into_case_id", "hidden_case", "into_case"),),
    "coordinate": (NOTE,),
    "dispatch": (_f("department_id", "department", "department"), _f("urgency", "urgency")),
    "pass_down": (_f("department_id", "lower_department", "target_department"),),
    "return": (REASON,),
    "request_postpone": (_f("days", "number"), REASON),
    "approve_postpone": (),
    "refuse_postpone": (REASON,),
    "assign_proxy": (_f("department_id", "department", "target_department"), REASON),
    "suspend": (REASON,),
    "resume": (),
    "feedback": (NOTE, _f("photos", "photos")),
    "urge": (NOTE,),
    "supervise": (NOTE,),
    "submit_result": (_f("result", "textarea"), _f("method", "method"), _f("photos", "photos")),
    "send_back": (REASON,),
    "approve_result": (),
    "report_check": (_f("passed", "bool"), _f("photos", "photos")),
    "close": (),
    "rework": (REASON,),
    "refer_hearing": (NOTE,),
    "return_visit": (_f("satisfied", "bool"),),
    "archive": (),
}
# Actions whose button asks for care (they end or turn back the case).
DANGER = frozenset({"reject", "return", "send_back", "rework", "refuse_postpone", "suspend"})

_PHONE = re.compile(r"^[0-9+\- ]{5,20}$")


def valid_phone(value: str) -> bool:
    """A mobile or landline number as people type it (digits, +, -, spaces)."""
    return bool(_PHONE.match(value))


def required(action: str) -> tuple[str, ...]:
    return BY_ACTION[action].required


def fields_of(action: str) -> tuple[FieldSpec, ...]:
    return ACTION_FIELDS.get(action, ())


def _missing(name: str, lang: str) -> str:
    label = translate(name, lang)
    return f"{translate('required', lang)}: {label}" if lang == "en" else f"请填写{label}"


def action_payload(
    action: str, form: FormData, lang: str
) -> tuple[dict[str, Any], FormState, list[str]]:
    """(payload without photos, the typed state, names of photo fields) for an action form.

    Photos are left to the caller, which keeps them through the media package."""
    state = FormState(form=action)
    payload: dict[str, Any] = {}
    photo_fields: list[str] = []
    needed = set(required(action))
    for spec in fields_of(action):
        if spec.kind == "photos":
            photo_fields.append(spec.name)
            continue
        raw = form.get(spec.name)
        value = raw.strip() if isinstance(raw, str) else ""
        state.values[spec.name] = value
        if not value:
            if spec.name in needed:
                state.errors[spec.name] = _missing(spec.label, lang)
            continue
        try:
            payload[spec.name] = _typed(spec, value, lang)
        except ValueError as exc:
            state.errors[spec.name] = str(exc)
    version = form.get("version")
    if isinstance(version, str) and version.isdigit():
        payload["version"] = int(version)
    return payload, state, photo_fields


def _typed(spec: FieldSpec, value: str, lang: str) -> Any:
    en = lang == "en"
    if spec.kind in ("int", "department", "lower_department", "hidden_case"):
        if not value.isdigit():
            raise ValueError("Choose one from the list" if en else "请从列表中选择")
        return int(value)
    if spec.kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise ValueError("Enter a number" if en else "请输入数字") from None
        return int(number) if number.is_integer() else number
    if spec.kind == "bool":
        if value not in ("yes", "no"):
            raise ValueError("Choose yes or no" if en else "请选择是或否")
        return value == "yes"
    if spec.kind == "urgency":
        if value not in ("A", "B", "C"):
            raise ValueError("Urgency is A, B or C" if en else "紧急程度只能是A、B、C")
        return value
    if spec.kind == "method":
        if value not in METHODS_721:
            raise ValueError("Choose a method" if en else "请选择处置方式")
        return value
    if len(value) > 2000:
        raise ValueError("At most 2000 characters" if en else "最多2000字")
    return value


@dataclass
class ReportForm:
    """A report typed into a page: the staff registration, the inspector's and the
    citizen's."""

    values: dict[str, str]
    errors: dict[str, str]
    lon: float | None = None
    lat: float | None = None


def report_form(
    form: FormData,
    lang: str,
    *,
    needs_source: bool = False,
    contact: bool = False,
) -> ReportForm:
    names = ["class_code", "description", "address", "lon", "lat", "urgency"]
    if needs_source:
        names.append("source")
    if contact:
        names += ["reporter_name", "reporter_phone"]
    values = {}
    for name in names:
        raw = form.get(name)
        values[name] = raw.strip() if isinstance(raw, str) else ""
    errors: dict[str, str] = {}
    en = lang == "en"
    if needs_source and not values["source"]:
        errors["source"] = _missing("source", lang)
    if not values["class_code"]:
        errors["class_code"] = _missing("class", lang)
    if not values["description"]:
        errors["description"] = _missing("description", lang)
    elif len(values["description"]) > 2000:
        errors["description"] = "At most 2000 characters" if en else "最多2000字"
    if len(values["address"]) > 200:
        errors["address"] = "At most 200 characters" if en else "最多200字"
    if values["urgency"] and values["urgency"] not in ("A", "B", "C"):
        errors["urgency"] = "Urgency is A, B or C" if en else "紧急程度只能是A、B、C"
    lon = lat = None
    try:
        lon, lat = float(values["lon"]), float(values["lat"])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError
    except ValueError:
        lon = lat = None
        errors["location"] = translate("position_missing", lang)
    if contact:
        if len(values["reporter_name"]) > 40:
            errors["reporter_name"] = "At most 40 characters" if en else "最多40字"
        phone = values["reporter_phone"]
        if phone and not _PHONE.match(phone):
            errors["reporter_phone"] = translate("phone_invalid", lang)
    return ReportForm(values, errors, lon, lat)


def field_for_error(field_name: str | None, known: set[str]) -> str:
    """Where to show a service's error: under its field when the form has it, else on top."""
    if field_name in ("lon", "lat"):
        return "location"
    return field_name if field_name in known else "_form"
