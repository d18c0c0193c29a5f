"""gunicorn's own refusals (bad request line, URI too long, headers too large) answer JSON."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, migrate
from tests.test_logs import ServeProcess


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    instance: Path = tmp_path_factory.mktemp("gunicorn")
    url = f"sqlite:///{instance / 'api.sqlite3'}"
    migrate(url, instance)
    settings = {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "INSTANCE_PATH": instance}
    process = ServeProcess(settings, instance / "serve.log", workers=1)
    yield process
    process.stop()


def raw(api: ServeProcess, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n", 431),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: 1\r\n" % n for n in range(200))
            + b"\r\n",
            431,
        ),
    ],
    ids=["bad-request-line", "uri-too-long", "header-too-long", "too-many-headers"],
)
def test_gunicorn_refusals_answer_in_the_api_error_shape(api, request_bytes, status):
    code, headers, body = raw(api, request_bytes)
    assert code == status
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)
    assert error["code"] == status and error["status"] and error["message"]
