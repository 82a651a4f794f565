"""Supervision: the clock sweep that the worker runs. It reads every running stage clock,
records a warning at 80 % of the limit and an overdue mark past it, and urges the handling
department automatically when a handling deadline passes (R-HD-4). Each mark is written
once per stage, so the sweep can run as often as wanted and by several workers."""
