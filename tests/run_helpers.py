"""scripts/run as a person runs it, in a session of its own, and the processes it leaves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL

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
    """scripts/run in a session of its own, like a terminal's foreground job.

    Its instance folder (SQLite database, demo keys, ``demo.env``) is ``tmp_path/instance``;
    ``env`` is what it was started with, for commands that must reach the same service.
    """

    def __init__(self, tmp_path: Path, redis_prefix: str, **settings: str) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "run.log"
        self.instance = tmp_path / "instance"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CIVILITY_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        self.env |= {
            "CIVILITY_SKIP_SETUP": "1",  # the suite's virtualenv is current
            "CIVILITY_PORT": str(self.port),
            "CIVILITY_INSTANCE_PATH": str(self.instance),
            "CIVILITY_REDIS_URL": REDIS_URL,
            "CIVILITY_REDIS_PREFIX": redis_prefix,
            "CIVILITY_SCORER": "profanity-check",
            **{f"CIVILITY_{name}": value for name, value in settings.items()},
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["scripts/run"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def kill(self) -> None:
        """Kill it and everything it started, if still running."""
        if self.process.poll() is None:
            children = descendants(self.process.pid)
            os.killpg(self.process.pid, signal.SIGKILL)
            for pid in children:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def run(tmp_path: Path, redis_prefix: str) -> Iterator[RunScript]:
    """scripts/run started (not yet answering); killed with all it started afterwards."""
    script = RunScript(tmp_path, redis_prefix)
    yield script
    script.kill()
