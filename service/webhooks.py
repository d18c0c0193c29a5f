"""Webhook requests: secrets, Standard Webhooks signatures, receiver URL checks, the POST."""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import hashlib
import hmac
import ipaddress
import secrets
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

import urllib3

from service.addresses import forbidden_reason, lookup
from service.models import WebhookEndpoint, utcnow

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
URL_MAX = 2000
USER_AGENT = "Civility-Webhooks/1"
RETRY_AFTER_MAX_S = 86400  # a receiver's Retry-After is honoured up to a day
MAX_ADDRESSES = 2  # addresses tried when the first refuses the connection


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class UnsafeURL(ValueError):
    """A webhook URL Civility will not send to; the message says why."""


# -- secrets and signatures ---------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the bytes its base64 part encodes."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64 HMAC-SHA256>`` entry over ``{id}.{timestamp}.{body}``."""
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def active_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    now = now or utcnow()
    active = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        active.append(endpoint.previous_secret)
    return active


def signed_headers(
    signing_secrets: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one delivery attempt, one signature per active secret."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in signing_secrets
        ),
    }


def rotate_secret(endpoint: WebhookEndpoint, overlap_s: float) -> str:
    """Give ``endpoint`` a new secret; the old one keeps signing for ``overlap_s`` seconds."""
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap_s)
    endpoint.secret = secret
    return secret


# -- receiver URLs ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a delivery goes: the URL's parts and the addresses vetted for it."""

    scheme: str
    host: str  # without brackets, lower case
    port: int
    path: str  # path and query, as sent in the request line
    host_header: str
    addresses: tuple[str, ...]


def parse_url(url: str) -> Target:
    """Split a receiver URL; raise UnsafeURL when it is not an absolute http(s) URL."""
    if len(url) > URL_MAX:
        raise UnsafeURL(f"longer than {URL_MAX} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise UnsafeURL("contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeURL("has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and listings; use the path or a query token.
        raise UnsafeURL("must not contain a user name or password")
    if parts.fragment:
        raise UnsafeURL("must not contain a #fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        path=path,
        host_header=parts.netloc,
        addresses=(),
    )


def resolve(url: str, *, allow_private: bool, timeout_s: float = 2.0) -> Target:
    """Parse ``url`` and resolve its host; raise UnsafeURL unless every address may be used.

    The lookup gives up after ``timeout_s``. The returned addresses are the ones to connect
    to, so a DNS answer that changes between this check and the connection cannot redirect
    the request.
    """
    target = parse_url(url)
    try:
        addresses = lookup(target.host, target.port, timeout_s)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"host {target.host!r} does not resolve ({exc})") from None
    if not addresses:
        raise UnsafeURL(f"host {target.host!r} does not resolve")
    if not allow_private:
        for text in addresses:
            reason = forbidden_reason(ipaddress.ip_address(text))
            if reason is not None:
                raise UnsafeURL(
                    f"host {target.host!r} resolves to {text} ({reason}); "
                    "private targets are not allowed (CIVILITY_WEBHOOK_ALLOW_PRIVATE)"
                )
    return dataclasses.replace(target, addresses=addresses)


# -- the POST --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Result:
    """What the receiver did with one attempt."""

    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        return self.error or f"HTTP {self.status_code}"


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float,
    read_timeout: float,
    max_bytes: int,
) -> Result:
    """POST ``body`` to the vetted addresses of ``target``; never follows redirects."""
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    # Host is the URL's; the connection goes to an address that passed the check.
    headers = {**headers, "Host": target.host_header, "Accept-Encoding": "identity"}
    started = time.monotonic()
    error = "no address to connect to"
    for address in target.addresses[:MAX_ADDRESSES]:
        if target.scheme == "https":
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                address,
                target.port,
                timeout=timeout,
                maxsize=1,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, maxsize=1)
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
            )
            latency_ms = _ms_since(started)
            try:
                answer = response.read(max_bytes, decode_content=False)
            except (urllib3.exceptions.HTTPError, OSError):
                answer = b""  # the status is what counts; a broken body is only not logged
            response.close()
        except urllib3.exceptions.NewConnectionError as exc:
            error = _describe(exc)
            continue
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Result(latency_ms=_ms_since(started), error=_describe(exc))
        finally:
            pool.close()
        status = response.status
        retry_after = None
        if status in (429, 503):
            retry_after = retry_after_s(response.headers.get("Retry-After"))
        redirect = None
        if 300 <= status < 400:
            location = response.headers.get("Location", "")[:300]
            redirect = f"HTTP {status}: redirect to {location!r} not followed"
        return Result(
            status_code=status,
            latency_ms=latency_ms,
            error=redirect,
            excerpt=answer.decode("utf-8", "replace")[:1000] or None,
            retry_after_s=retry_after,
        )
    return Result(latency_ms=_ms_since(started), error=error)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _describe(exc: BaseException) -> str:
    # NewConnectionError is a ConnectTimeoutError to urllib3: test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        kind = "connection failed"
    elif isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        kind = "connect timeout"
    elif isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        kind = "read timeout"
    elif isinstance(exc, urllib3.exceptions.SSLError):
        kind = "TLS error"
    else:
        kind = "network error"
    return f"{kind}: {exc}"[:1000]


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now, capped; None if bad."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or utcnow())).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)
