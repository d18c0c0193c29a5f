"""A local webhook receiver that checks every Standard Webhooks signature; it can fail on cue."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def valid_signature(secret: str, headers, body: bytes) -> bool:
    """True when one ``v1,`` entry of webhook-signature is HMAC-SHA256 of ``id.timestamp.body``.

    Written from the Standard Webhooks spec, not from Civility's code, so it checks it.
    """
    message_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not message_id or not timestamp:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    entries = (headers.get("webhook-signature") or "").split()
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, _, sig in (entry.partition(",") for entry in entries)
    )


@dataclass
class Delivery:
    """One POST as received."""

    at: float
    message_id: str
    event_type: str | None
    comment_id: int | None
    signed: bool
    answered: int


class Receiver:
    """ThreadingHTTPServer on 127.0.0.1; answers 200, or 500 while ``failing``."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.failing = False
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.record(self.headers, body, self)

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/civility"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, headers, body: bytes, handler: BaseHTTPRequestHandler) -> None:
        signed = self.secret is not None and valid_signature(self.secret, headers, body)
        try:
            payload = json.loads(body)
            event_type, comment_id = payload["type"], payload["data"].get("comment_id")
        except (ValueError, KeyError, AttributeError):
            event_type, comment_id = None, None
        status = 500 if self.failing or not signed else 200
        with self.lock:
            self.deliveries.append(
                Delivery(
                    time.time(),
                    headers.get("webhook-id", ""),
                    event_type,
                    comment_id,
                    signed,
                    status,
                )
            )
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok" if status == 200 else b"no")

    def accepted(self) -> dict[str, Delivery]:
        """Message id → its first validly signed delivery answered 200."""
        with self.lock:
            got = {}
            for d in self.deliveries:
                if d.signed and d.answered == 200:
                    got.setdefault(d.message_id, d)
            return got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
