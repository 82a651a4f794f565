"""Write docs/workflow.md from the flows' tables (a test checks it is up to date).

Both flows run on the one engine (`cityloop.workflow`): the case loop (`cityloop.cases.states`)
and the enforcement procedure (`cityloop.enforcement.states`).

Run: .venv/bin/python scripts/gen_workflow_doc.py
"""

from __future__ import annotations

from pathlib import Path

from cityloop.cases import states as case_states
from cityloop.enforcement import states as enforcement_states
from cityloop.enforcement.periods import DEFAULT_PERIODS
from cityloop.workflow.flow import Table

SHOWN = {"__previous__": "(previous)", "__same__": "(same)"}


def _flow(table: Table, diagram: str, source: str) -> list[str]:
    lines = [
        f"## {table.title} — flow `{table.name}` (generated from `{source}`)",
        "",
        "```mermaid",
        diagram,
        "```",
        "",
        "### States",
        "",
        "| state | 中文 | open | stage clock |",
        "|---|---|---|---|",
    ]
    for state, (zh, _en, is_open) in table.states.items():
        lines.append(
            f"| `{state}` | {zh} | {'yes' if is_open else 'no'} | "
            f"{table.state_stage.get(state, '')} |"
        )
    lines += [
        "",
        "### Actions",
        "",
        "| action | 中文 | from | to | roles | scope | payload |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in table.transitions:
        targets = ", ".join(SHOWN.get(x, x) for x in t.targets)
        lines.append(
            f"| `{t.action}` | {t.label} | {', '.join(sorted(t.sources))} | {targets} | "
            f"{', '.join(sorted(t.roles))} | {t.scope} | {', '.join(t.required)} |"
        )
    return lines


def render() -> str:
    lines = [
        "# The workflows (generated from the flows' tables; do not edit by hand)",
        "",
        "Every flow is a table run by the one engine (`cityloop.workflow.engine.run`): version "
        "check (409), roles and scopes, guards, payload checks, the stage clock on the working "
        "calendar, a hash-chained timeline line per step (`cityloop verify-audit` checks every "
        "flow's chain) and the one announce hook.",
        "",
    ]
    lines += _flow(case_states.TABLE, case_states.mermaid_diagram(), "cityloop.cases.states")
    lines += [
        "",
        "`admin` may take every action. Guards: `return` only within 1 working hour of "
        "receipt and never for leader-assigned cases; postponement decisions need a pending "
        "request; `close` needs a passed check. `open_enforcement` makes an enforcement case "
        "from the case; the case waits in `enforcing` on that case's legal clock and gets "
        "`enforcement_result` from the system when the enforcement case ends.",
        "",
    ]
    lines += _flow(
        enforcement_states.TABLE,
        enforcement_states.mermaid_diagram(),
        "cityloop.enforcement.states",
    )
    lines += [
        "",
        "### Legal periods (data: `enf_legal_periods`, seeded with these rows)",
        "",
        "| code | period | days | counted in | basis |",
        "|---|---|---|---|---|",
    ]
    for p in DEFAULT_PERIODS:
        unit = "working days" if p.working_days else "natural days"
        lines.append(f"| `{p.code}` | {p.label} | {p.days} | {unit} | {p.basis} |")
    lines += [
        "",
        "Rules the effects enforce (each a 422 naming the field, nothing written): two officers "
        "with a valid 执法证 (art. 42); the simple procedure's limits (art. 51); a 重大 case "
        "needs an approved 法制审核 (art. 58); no decision before the statement period ends "
        "unless waived in writing, nor while a hearing may still be requested (art. 44-45, 64); "
        "a hearing noticed 7 working days ahead (art. 64, 85); a decision within 90 days of 立案 "
        "unless an extension was granted (art. 60); a fine inside the discretion standard's "
        "range for the tier (raised one step for a repeat offence) unless a 集体讨论 record is "
        "attached (art. 57); 首违不罚 only for a first, rectified offence (art. 33); a payment "
        "at most the amount due, 加处罚款 3 % a day capped at the fine (art. 72).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "workflow.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
