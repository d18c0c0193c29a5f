"""scripts/run as a person runs it: starts everything, and one Ctrl-C stops it all cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, RUN_ID
from tests.worker_helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def descendants(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(line) for line in found.split()]
    return children + [g for child in children for g in descendants(child)]


class RunScript:
    """scripts/run in a session of its own, like a terminal's foreground job."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "run.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CIVILITY_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        env |= {
            "CIVILITY_SKIP_SETUP": "1",  # the suite's virtualenv is current
            "CIVILITY_PORT": str(self.port),
            "CIVILITY_INSTANCE_PATH": str(tmp_path / "instance"),
            "CIVILITY_REDIS_URL": REDIS_URL,
            "CIVILITY_REDIS_PREFIX": f"civility-test-{RUN_ID}-run",
            "CIVILITY_SCORER": "profanity-check",
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["scripts/run"], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)


@pytest.fixture
def run(tmp_path):
    script = RunScript(tmp_path)
    yield script
    if script.process.poll() is None:
        os.killpg(script.process.pid, signal.SIGKILL)
        for pid in descendants(script.process.pid):
            os.kill(pid, signal.SIGKILL)
        script.process.wait()


def test_one_ctrl_c_stops_everything_cleanly(run):
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
