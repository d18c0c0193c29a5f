"""scripts/run as a person runs it: starts everything, and one Ctrl-C stops it all cleanly."""

from __future__ import annotations

import time

from tests.run_helpers import alive, answers, descendants, run  # noqa: F401 (a fixture)
from tests.worker_helpers import wait_for


def test_one_ctrl_c_stops_everything_cleanly(run):  # noqa: F811
    wait_for(
        lambda: answers(run.url + "/healthz") or run.process.poll() is not None,
        "the API",
        timeout=120,
    )
    assert run.process.poll() is None, run.log()
    wait_for(
        lambda: "worker" in run.log() and "started" in run.log(), "the worker to start", timeout=60
    )
    children = descendants(run.process.pid)
    assert len(children) >= 3  # worker, dispatcher, gunicorn (and its workers)
    time.sleep(1)
    run.ctrl_c()
    run.process.wait(timeout=60)
    log = run.log()
    assert "second SIG" not in log, log  # "second SIGTERM; stopping now, unacked work ..."
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)], log
    assert ".venv/bin/civility" in log  # how to run the README's civility commands
