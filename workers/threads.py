"""How the worker's idle torch threads wait: set in the environment before torch loads.

Torch's intra-op threads meet at a barrier after every operator. A thread that arrives
first either spins (fast to resume, but it takes a core) or sleeps (a futex wake-up of
tens of microseconds). Which wins depends on who else wants the cores, so it is a setting,
``CIVILITY_MODEL_THREAD_WAIT``; a variable the operator set themselves always wins.

Torch free of the cores' other users can spin; a thread that spins while the one it
waits for is descheduled wastes that one's time slice, which made passes several times
slower on a 2-core machine shared with the API (docs/benchmarks.md). ``brief`` polls a few
hundred times (microseconds), then sleeps: passes ran faster than with ``passive`` with
the cores free or not, and between passes no thread spins (bench/threads.py).

Imports no torch: called before torch is imported.
"""

from __future__ import annotations

from collections.abc import MutableMapping

# GOMP_SPINCOUNT is libgomp's (PyTorch's Linux wheels link it); KMP_BLOCKTIME is the LLVM
# and Intel OpenMP runtimes' (other builds), in milliseconds, where 0 sleeps at once.
BRIEF_SPINS = 300
THREAD_WAITS: dict[str, dict[str, str]] = {
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "brief": {"GOMP_SPINCOUNT": str(BRIEF_SPINS), "KMP_BLOCKTIME": "0"},
    "active": {"OMP_WAIT_POLICY": "ACTIVE"},
}
OPERATORS_OWN = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def apply_thread_wait(wait: str, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set ``wait``'s OpenMP variables in ``environ`` unless the operator set any of them;
    return what was set. KeyError for a policy not in THREAD_WAITS."""
    chosen = THREAD_WAITS[wait]
    if any(name in environ for name in OPERATORS_OWN):
        return {}
    environ.update(chosen)
    return dict(chosen)
