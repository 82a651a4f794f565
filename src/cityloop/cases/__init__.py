"""The case and its closed loop: the Case, its hash-chained timeline of CaseEvents, the one
declared transition table (states.py), deadlines and stage clocks (deadlines.py), and
`service.transition()`, the only writer of a case's state (R-AC-*, R-DIS-*, R-HD-*, R-CL-*)."""
