"""The README's shell examples, run as printed and in order, against scripts/run and its demo.

Every ```sh and ```bash block runs, unless an HTML comment right above it says
``<!-- example not run: why -->``. The blocks share one bash, as a reader's second terminal
in the checkout would (variables carry from block to block). Each command must exit 0 and
answer no error; a ``#  {…}`` comment under a command is its answer as printed, and the real
answer must match it: the same keys and values, where ``"civ_…"`` is a prefix, ``…`` stands
for more entries, and fractional numbers (scores) only need to be numbers.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.run_helpers import ROOT, RunScript, answers
from tests.worker_helpers import wait_for

NOT_RUN = re.compile(r"<!-- example not run: [^>]+ -->\n$")
BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PRINTED_ADDRESS = "http://127.0.0.1:8000"


@dataclass
class Command:
    text: str
    answer: str = ""  # the "#  {…}" comment printed under it, if any


def example_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return [
        found.group(1)
        for found in BLOCK.finditer(readme)
        if not NOT_RUN.search(readme[: found.start()])
    ]


def complete(text: str) -> bool:
    """Whether bash reads ``text`` as whole commands (no open quote, brace or ``\\``)."""
    return subprocess.run(["bash", "-n", "-c", text], capture_output=True).returncode == 0


def commands(block: str) -> list[Command]:
    """The block's commands, each with the answer printed under it."""
    found: list[Command] = []
    pending: list[str] = []
    answer: list[str] = []
    for line in block.splitlines():
        if answer and answer_open("\n".join(answer)):
            answer.append(line)
            continue
        if answer:
            found[-1].answer = "\n".join(answer)
            answer = []
        if not pending and line.startswith("#  {"):
            answer = [line]
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        text = "\n".join(pending)
        if not line.endswith("\\") and complete(text):
            found.append(Command(text))
            pending = []
    assert not pending, f"an unfinished command in the README:\n{chr(10).join(pending)}"
    if answer:
        found[-1].answer = "\n".join(answer)
    return found


def answer_open(text: str) -> bool:
    return text.count("{") + text.count("[") > text.count("}") + text.count("]")


def printed_answer(comment: str, url: str) -> Any:
    """The answer as the README prints it, as JSON with ``…`` where more may be."""
    text = re.sub(r"^#  ?", "", comment, flags=re.MULTILINE)
    text = text[: text.rindex("}") + 1].replace(PRINTED_ADDRESS, url)
    text = re.sub(r",\s*…", "", text)
    text = re.sub(r"\[\s*…\s*\]", "[]", text)
    text = re.sub(r"\{\s*…\s*\}", "{}", text)
    return json.loads(text)


def matches(printed: Any, real: Any) -> bool:
    if isinstance(printed, dict):
        return isinstance(real, dict) and all(
            key in real and matches(value, real[key]) for key, value in printed.items()
        )
    if isinstance(printed, list):
        return (
            isinstance(real, list)
            and len(real) >= len(printed)
            and all(matches(p, r) for p, r in zip(printed, real, strict=False))
        )
    if isinstance(printed, str) and printed.endswith("…"):
        return isinstance(real, str) and real.startswith(printed[:-1])
    if isinstance(printed, float):  # a score: the test's scorer is not the README's
        return isinstance(real, int | float) and not isinstance(real, bool)
    return type(printed) is type(real) and printed == real


def json_objects(output: str) -> list[dict[str, Any]]:
    found = []
    for line in output.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def is_error(answer: dict[str, Any]) -> bool:
    """Civility's error shape, or the Perspective and OpenAI faces' ``{"error": …}``."""
    code = answer.get("code")
    return "error" in answer or (isinstance(code, int) and code >= 400 and "message" in answer)


class Shell:
    """One bash reading commands as a terminal would; each command's output and status."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        # Stricter than a terminal: an unset variable or a failing pipe stage is an error.
        self.send("set -u -o pipefail")

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")  # bash has exited

    def send(self, text: str, timeout: float = 60) -> tuple[int, str]:
        """Run ``text`` (stdin closed to it); its exit status and output."""
        mark = f"--- done {uuid.uuid4().hex}"
        self.process.stdin.write(f"{{\n{text}\n}} < /dev/null\nprintf '\\n{mark} %d\\n' $?\n")
        self.process.stdin.flush()
        output = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no answer in {timeout}s to:\n{text}\n{''.join(output)}"
                ) from None
            if not line:
                raise AssertionError(f"the shell exited running:\n{text}\n{''.join(output)}")
            if line.startswith(mark):
                return int(line.split()[-1]), "".join(output)
            output.append(line)

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # still in a command that hung
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def nothing_pending(url: str, instance: Path) -> bool:
    """Whether the worker has decided every comment of the demo site (a reader reads slowly)."""
    key = json.loads((instance / "demo-keys.json").read_text())["moderator"]
    request = urllib.request.Request(
        f"{url}/v1/queue/counts", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)["site"]["pending"] == 0


@pytest.fixture
def run(tmp_path: Path, redis_prefix: str) -> Iterator[RunScript]:
    # A loaded CI machine can take longer than the 700 ms a synchronous score waits by
    # default; the Perspective example is about the answer's shape, not that deadline.
    script = RunScript(tmp_path, redis_prefix, ANALYZE_TIMEOUT_MS="5000")
    yield script
    script.kill()


def test_readme_examples_work_as_printed_after_scripts_run(run, tmp_path):
    # A second terminal in a checkout: .venv/ and instance/ (the one scripts/run uses).
    os.symlink(ROOT / ".venv", tmp_path / ".venv")
    wait_for(
        lambda: answers(run.url + "/healthz") or run.process.poll() is not None,
        "the API",
        timeout=120,
    )
    assert run.process.poll() is None, run.log()
    assert f"source {run.instance / 'demo.env'}" in run.log(), run.log()
    shell = Shell(tmp_path, run.env)
    ran = []
    try:
        for n, block in enumerate(example_blocks()):
            if n:  # The first block needs no worker; the rest read what the worker decided.
                wait_for(lambda: nothing_pending(run.url, run.instance), "the worker", timeout=90)
            for command in commands(block):
                status, output = shell.send(command.text)
                where = f"{command.text}\n→ {output}"
                assert status == 0, where
                answered = json_objects(output)
                assert not [a for a in answered if is_error(a)], where
                if "curl " in command.text:
                    assert answered, f"no JSON answer: {where}"
                if command.answer:
                    printed = printed_answer(command.answer, run.url)
                    assert any(matches(printed, a) for a in answered), (
                        f"the README prints {command.answer}\n{where}"
                    )
                ran.append(command.text)
    except AssertionError as failure:
        log = run.log()[-6000:]
        raise AssertionError(f"{failure}\n--- the end of scripts/run's log:\n{log}") from None
    finally:
        shell.close()
    # The sections a newcomer reads first were among them.
    for expected in ("civility sites create", "/v1/comments/$ID", "/v1/comments/$HELD/decision"):
        assert any(expected in text for text in ran), expected


def test_a_printed_answer_is_matched_field_by_field():
    printed = printed_answer('#  {"id": 12, "key": "civ_…", "items": […], "score": 0.97, …}', "")
    real = {"id": 12, "key": "civ_abc", "items": [1], "score": 0.1, "more": True}
    assert matches(printed, real)
    assert not matches(printed, {**real, "id": 13})
    assert not matches(printed, {**real, "key": "whsec_abc"})
    assert not matches(printed, {k: v for k, v in real.items() if k != "items"})
    assert not matches(printed_answer('#  {"until": null}', ""), {"until": "2026-12-04"})
    assert is_error({"code": 409, "status": "Conflict", "message": "Comment 9 is approved."})
    assert is_error({"error": {"code": 400, "message": "Unknown attribute: INSULT"}})
    assert not is_error({"code": "toxicity", "label": "toxicity"})


def test_commands_are_split_as_bash_reads_them():
    block = """# a comment
A=$(curl -s x \\
  -d '{"a": 1,
       "b": 2}' | field a)
#  {"a": 1,
#   "b": 2}   the rest is prose
f() { echo {; }
"""
    found = commands(block)
    assert [c.text.splitlines()[0] for c in found] == ["A=$(curl -s x \\", "f() { echo {; }"]
    assert printed_answer(found[0].answer, "") == {"a": 1, "b": 2}
    assert found[1].answer == ""
