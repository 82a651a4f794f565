"""Write docs/workflow.md from the transition table (a test checks it is up to date).

Run: .venv/bin/python scripts/gen_workflow_doc.py
"""

from __future__ import annotations

from pathlib import Path

from cityloop.cases.states import STATE_STAGE, STATES, TRANSITIONS, mermaid_diagram

SHOWN = {"__previous__": "(previous)", "__same__": "(same)"}


def render() -> str:
    lines = [
        "# The case loop (generated from `cityloop.cases.states`; do not edit by hand)",
        "",
        "```mermaid",
        mermaid_diagram(),
        "```",
        "",
        "## States",
        "",
        "| state | 中文 | open | stage clock |",
        "|---|---|---|---|",
    ]
    for state, (zh, _en, is_open) in STATES.items():
        lines.append(
            f"| `{state}` | {zh} | {'yes' if is_open else 'no'} | {STATE_STAGE.get(state, '')} |"
        )
    lines += [
        "",
        "## Actions",
        "",
        "| action | 中文 | from | to | roles | scope | payload |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in TRANSITIONS:
        targets = ", ".join(SHOWN.get(x, x) for x in t.targets)
        lines.append(
            f"| `{t.action}` | {t.label} | {', '.join(sorted(t.sources))} | {targets} | "
            f"{', '.join(sorted(t.roles))} | {t.scope} | {', '.join(t.required)} |"
        )
    lines += [
        "",
        "`admin` may take every action. Guards: `return` only within 1 working hour of "
        "receipt and never for leader-assigned cases; postponement decisions need a pending "
        "request; `close` needs a passed check.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "workflow.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
