"""The garbage collector's policy for a long-running server process (`cityloop serve`).

Why it is ours to set: a worker keeps a few hundred thousand long-lived objects (the grid
index, the ORM's mappers, the routes), and each full collection walks all of them while it
holds the interpreter lock. Measured on the intake benchmark before this policy: four full
collections per worker in 30 s, the longest 170–200 ms, every request of that worker stopped
meanwhile. Tests and one-shot commands keep the interpreter's defaults.
"""

from __future__ import annotations

import gc

# A request allocates thousands of short-lived containers, nearly all freed by reference
# counting; the default 700 ran a young collection every few dozen reports.
_YOUNG_THRESHOLD = 20_000


def tune_for_server() -> None:
    """Fewer young collections; older generations keep their default ratios."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(_YOUNG_THRESHOLD, middle, old)


def settle_long_lived() -> None:
    """After building what the process keeps for its life: collect once, then move every live
    object out of the collector's sight (`gc.freeze`), so full collections walk only what
    requests leave behind."""
    gc.collect()
    gc.freeze()


def release_long_lived() -> None:
    """Before dropping something settled (a reloaded grid index): hand the settled objects
    back to the collector, so what is dropped can be freed."""
    gc.unfreeze()
