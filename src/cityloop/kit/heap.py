"""The garbage collector's and the C allocator's policy for a long-running server process
(`cityloop serve`).

Why it is ours to set: a worker keeps a few hundred thousand long-lived objects (the grid
index, the ORM's mappers, the routes), and each full collection walks all of them while it
holds the interpreter lock. Measured on the intake benchmark before this policy: four full
collections per worker in 30 s, the longest 170–200 ms, every request of that worker stopped
meanwhile. Tests and one-shot commands keep the interpreter's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

# A request allocates thousands of short-lived containers, nearly all freed by reference
# counting; the default 700 ran a young collection every few dozen reports.
_YOUNG_THRESHOLD = 20_000


# glibc's mallopt parameter, and the size from which a block gets its own mapping.
_M_MMAP_THRESHOLD = -3
_MMAP_FROM = 1024 * 1024


def tune_for_server() -> None:
    """Fewer young collections; older generations keep their default ratios. And large
    blocks always mapped on their own, so that freeing them gives the memory back: glibc
    raises its mapping threshold after each large free (up to 32 MB), so a decoded photo's
    buffers then came from the threads' heaps and stayed there — 24 concurrent 40 MP JPEGs
    left the worker 600 MB larger for good (bench/bench_bomb.py, issue 23)."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(_YOUNG_THRESHOLD, middle, old)
    _map_large_blocks()


def _map_large_blocks() -> None:
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)  # setting it also fixes it
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own policy stands
        return


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
