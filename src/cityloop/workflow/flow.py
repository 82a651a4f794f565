"""What a flow is: its table (states, transition rows, stage clocks) and its runtime hooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cityloop.kit.calendar import WorkingCalendar
    from cityloop.workflow.actors import Actor
    from cityloop.workflow.engine import ActionContext
    from cityloop.workflow.timeline import Timeline

Guard = Callable[["ActionContext"], "str | None"]
Effect = Callable[["ActionContext"], "str | None"]

# The scope everyone holding the role has: no per-record check.
SCOPE_CITY = "city"


@dataclass(frozen=True)
class Transition:
    """One row: from which states an action may be taken, where it leads, which roles may take
    it, within what scope, what the payload must hold and which guards must pass. A row with
    several targets picks one from the payload with `choose`, or its effect returns one (the
    first target is the default then)."""

    action: str
    label: str
    label_en: str
    sources: frozenset[str]
    targets: tuple[str, ...]
    roles: frozenset[str]
    scope: str = SCOPE_CITY
    required: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = field(default=())
    choose: Callable[[dict[str, Any]], str] | None = None

    @property
    def keeps_state(self) -> bool:
        return all(t == SAME for t in self.targets) or set(self.targets) <= self.sources

    @property
    def repeats_unnoticed(self) -> bool:
        """Nothing refuses this action twice (urge, supervise, feedback): the state stays,
        no guard looks, the department stays (a pass_down's repeat fails its scope). Only
        the record's version tells a repeat from a new one, so the API asks for it (issue 23)."""
        return self.keeps_state and not self.guards and "department_id" not in self.required

    def target_for(self, payload: dict[str, Any]) -> str:
        if len(self.targets) == 1:
            return self.targets[0]
        if self.choose is None:
            return self.targets[0]
        return self.choose(payload)


# Targets that are not states: back to where a suspension began, or stay where it is.
PREVIOUS = "__previous__"
SAME = "__same__"
_SPECIAL = frozenset({PREVIOUS, SAME})


@dataclass(frozen=True)
class Table:
    """A flow as data: the docs draw its diagram from it and the console its buttons."""

    name: str
    title: str
    # state -> (Chinese label, English label, is_open)
    states: Mapping[str, tuple[str, str, bool]]
    transitions: tuple[Transition, ...]
    # The clock that runs while a record sits in a state.
    state_stage: Mapping[str, str]
    stage_labels: Mapping[str, str]
    by_action: dict[str, Transition] = field(init=False)
    actions_from: dict[str, list[Transition]] = field(init=False)
    open_states: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        by_action = {t.action: t for t in self.transitions}
        if len(by_action) != len(self.transitions):
            raise ValueError(f"flow {self.name}: an action appears twice")
        for t in self.transitions:
            unknown = (set(t.sources) | set(t.targets)) - set(self.states) - _SPECIAL
            if unknown:
                raise ValueError(f"flow {self.name}: {t.action} names unknown states {unknown}")
        object.__setattr__(self, "by_action", by_action)
        object.__setattr__(
            self,
            "actions_from",
            {s: [t for t in self.transitions if s in t.sources] for s in self.states},
        )
        object.__setattr__(
            self, "open_states", frozenset(s for s, (_, _, o) in self.states.items() if o)
        )

    def state_label(self, state: str | None, lang: str = "zh") -> str:
        if state is None:
            return ""
        zh, en, _ = self.states[state]
        return en if lang == "en" else zh

    def mermaid(self, previous_states: tuple[str, ...] = ()) -> str:
        """The diagram drawn from the rows; `__previous__` (a resume) fans out to the states
        it can return to."""
        lines = ["stateDiagram-v2"]
        for t in self.transitions:
            for source in sorted(t.sources):
                for target in t.targets:
                    if target == PREVIOUS:
                        for back in previous_states:
                            lines.append(f"    {source} --> {back}: {t.label} {t.action}")
                        continue
                    if target == SAME:
                        target = source
                    lines.append(f"    {source} --> {target}: {t.label} {t.action}")
        return "\n".join(lines)


ScopeCheck = Callable[["ActionContext"], "str | None"]


@dataclass(frozen=True)
class Flow:
    """A table plus what the engine needs to run it on a record of a model: how to load and
    lock a record, who may see it, what each scope means, what each action does besides
    moving the state, and how the stage clock restarts."""

    table: Table
    timeline: Timeline
    noun: str  # how messages name a record: "case", "enforcement case"
    load: Callable[[Session, int, bool], Any]
    can_see: Callable[[Session, Actor, Any], bool]
    restart_clock: Callable[[Session, Any, datetime, WorkingCalendar], None]
    effects: Mapping[str, Effect]
    scope_checks: Mapping[str, ScopeCheck] = field(default_factory=dict)
    clock_restarting: frozenset[str] = frozenset()
    # Checks every row's payload gets after its required fields (types of shared fields).
    payload_check: Callable[[Transition, dict[str, Any]], None] | None = None

    @property
    def name(self) -> str:
        return self.table.name
