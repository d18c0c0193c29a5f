"""The worker's thread-wait policies, as libgomp (PyTorch's OpenMP) really runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workers.threads import OPERATORS_OWN, apply_thread_wait

# In a fresh interpreter (OpenMP reads its variables once, when torch loads): one pass over
# two threads, then half a second idle; prints the CPU seconds the process spent idle.
IDLE_CPU = """
import json, os, sys, time
from workers.threads import apply_thread_wait
apply_thread_wait(sys.argv[1], os.environ)
import torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
for _ in range(20):
    a @ a
time.sleep(0.1)
before = time.process_time()
time.sleep(0.5)
print(json.dumps({"idle_cpu_s": time.process_time() - before}))
"""


def idle_cpu(wait: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in OPERATORS_OWN}
    out = subprocess.run(
        [sys.executable, "-c", IDLE_CPU, wait],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])["idle_cpu_s"]


def test_brief_and_passive_threads_sleep_between_passes_where_active_ones_spin():
    # Spinning between passes is what took the API's core on a shared machine.
    assert idle_cpu("active") > 0.15
    assert idle_cpu("brief") < 0.05
    assert idle_cpu("passive") < 0.05


@pytest.mark.parametrize("own", ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"])
def test_a_variable_the_operator_set_wins_over_the_setting(own):
    environ = {own: "1", "PATH": "/bin"}

    assert apply_thread_wait("brief", environ) == {}
    assert environ == {own: "1", "PATH": "/bin"}


def test_each_policy_sets_its_runtime_variables():
    environ: dict[str, str] = {}

    assert apply_thread_wait("brief", environ) == {"GOMP_SPINCOUNT": "300", "KMP_BLOCKTIME": "0"}
    assert environ == {"GOMP_SPINCOUNT": "300", "KMP_BLOCKTIME": "0"}
    assert apply_thread_wait("passive", {}) == {"OMP_WAIT_POLICY": "PASSIVE"}
