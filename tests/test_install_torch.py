"""scripts/install-torch picks torch's CPU build wherever it can, and works where it cannot."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install-torch"


def plan(**env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CIVILITY_")}
    full |= {"PYTHON": sys.executable, **env}
    return subprocess.run(
        [str(SCRIPT), "--dry-run"], env=full, capture_output=True, text=True, timeout=60
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once it is closed


def test_the_cpu_index_is_used_when_it_answers(httpserver):
    httpserver.expect_request("/whl/cpu/torch/").respond_with_data("<html></html>")
    index = httpserver.url_for("/whl/cpu")
    answer = plan(CIVILITY_TORCH_INDEX=index)
    assert answer.returncode == 0, answer.stderr
    assert f"--index-url {index} torch==2.13.0" in answer.stdout


def test_an_unreachable_cpu_index_falls_back_to_the_ordinary_one_quickly():
    started = time.monotonic()
    answer = plan(CIVILITY_TORCH_INDEX=f"http://127.0.0.1:{closed_port()}/whl/cpu")
    assert answer.returncode == 0, answer.stderr
    assert "--index-url" not in answer.stdout and "torch==2.13.0" in answer.stdout
    assert "does not answer" in answer.stderr
    assert time.monotonic() - started < 30


def test_the_default_is_pytorchs_cpu_index():
    text = SCRIPT.read_text()
    assert 'index="https://download.pytorch.org/whl/cpu"' in text
    # scripts/setup and the Dockerfile both go through it.
    assert "scripts/install-torch" in (ROOT / "scripts" / "setup").read_text()
    assert "scripts/install-torch" in (ROOT / "Dockerfile").read_text()


def test_cuda_is_a_switch_and_nonsense_is_refused():
    answer = plan(CIVILITY_TORCH="cuda")
    assert answer.returncode == 0 and "--index-url" not in answer.stdout
    assert "does not answer" not in answer.stderr  # nothing probed
    refused = plan(CIVILITY_TORCH="rocm")
    assert refused.returncode == 2 and "cpu or cuda" in refused.stderr


def test_it_installs_here_where_only_the_ordinary_index_answers():
    # The real install into the suite's own virtualenv: torch 2.13.0 is already there, so
    # pip resolves and stops; what matters is that the fallback path runs and succeeds.
    full = {k: v for k, v in os.environ.items() if not k.startswith("CIVILITY_")}
    full |= {"PYTHON": sys.executable, "CIVILITY_TORCH_INDEX": f"http://127.0.0.1:{closed_port()}"}
    answer = subprocess.run([str(SCRIPT)], env=full, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr
