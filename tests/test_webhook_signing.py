"""Webhook secrets and signatures (checked by two independent verifiers), URL checks, schedules."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import standardwebhooks
import svix.webhooks

from service import webhooks
from service.config import DEFAULTS
from service.deliveries import parse_schedule
from service.models import utcnow
from service.webhooks import UnsafeURL, retry_after_s

BODY = b'{"type":"comment.approved","timestamp":"2026-01-01T00:00:00+00:00","data":{"x":"\\u00e9"}}'


def verify_both(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Raise unless both the Standard Webhooks and the Svix verifier accept the request."""
    standardwebhooks.Webhook(secret).verify(body, headers)
    svix.webhooks.Webhook(secret).verify(body, headers)


def rejected_by_both(secret: str, headers: dict[str, str], body: bytes) -> bool:
    failures = 0
    for verifier in (standardwebhooks.Webhook(secret), svix.webhooks.Webhook(secret)):
        try:
            verifier.verify(body, headers)
        except (standardwebhooks.WebhookVerificationError, svix.webhooks.WebhookVerificationError):
            failures += 1
    return failures == 2


def endpoint(secret: str, previous: str | None = None, expires_in_s: float = 0) -> SimpleNamespace:
    return SimpleNamespace(
        secret=secret,
        previous_secret=previous,
        previous_secret_expires_at=utcnow() + timedelta(seconds=expires_in_s),
    )


def test_secrets_are_whsec_base64_of_at_least_24_random_bytes():
    made = {webhooks.new_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24


def test_signature_matches_the_standard_webhooks_reference_vector():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signed = webhooks.signature(
        secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_headers_verify_with_both_libraries():
    secret = webhooks.new_secret()
    headers = webhooks.signed_headers([secret], "msg_1", int(time.time()), BODY)
    verify_both(secret, headers, BODY)
    assert headers["webhook-id"] == "msg_1"


def test_changed_body_or_wrong_secret_fails_both_verifiers():
    secret = webhooks.new_secret()
    headers = webhooks.signed_headers([secret], "msg_1", int(time.time()), BODY)
    assert rejected_by_both(secret, headers, BODY.replace(b"approved", b"rejected"))
    assert rejected_by_both(webhooks.new_secret(), headers, BODY)


def test_during_rotation_both_secrets_sign_and_each_verifies():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    signing = webhooks.active_secrets(endpoint(new, previous=old, expires_in_s=60))
    assert signing == [new, old]
    headers = webhooks.signed_headers(signing, "msg_2", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify_both(old, headers, BODY)
    verify_both(new, headers, BODY)


def test_after_the_overlap_only_the_new_secret_signs():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    signing = webhooks.active_secrets(endpoint(new, previous=old, expires_in_s=-1))
    assert signing == [new]
    headers = webhooks.signed_headers(signing, "msg_3", int(time.time()), BODY)
    verify_both(new, headers, BODY)
    assert rejected_by_both(old, headers, BODY)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/hook",
        "http://10.0.0.1/hook",
        "http://172.16.5.4/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://localhost/hook",
        "https://localhost:8443/hook",
    ],
)
def test_private_loopback_link_local_and_reserved_targets_are_refused(url):
    with pytest.raises(UnsafeURL, match="not allowed"):
        webhooks.resolve(url, allow_private=False)


def test_private_targets_pass_when_the_operator_allows_them():
    target = webhooks.resolve("http://localhost:9999/hook?x=1", allow_private=True)
    assert "127.0.0.1" in target.addresses
    assert (target.port, target.path, target.host_header) == (9999, "/hook?x=1", "localhost:9999")


def test_public_address_is_allowed():
    target = webhooks.resolve("https://93.184.216.34/hooks/civility", allow_private=False)
    assert target.addresses == ("93.184.216.34",)
    assert (target.scheme, target.port, target.path) == ("https", 443, "/hooks/civility")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.216.34/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("93.184.216.34/hook", "only http and https"),
        ("http:///hook", "no host"),
        ("https://user:pass@93.184.216.34/hook", "user name or password"),
        ("https://93.184.216.34/hook#x", "fragment"),
        ("https://93.184.216.34:99999/hook", "not a valid URL"),
        ("https://93.184.216.34/ho ok", "whitespace"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url, why):
    with pytest.raises(UnsafeURL, match=why):
        webhooks.resolve(url, allow_private=True)


def test_schedule_parses_units_and_the_default_retries_for_over_a_day():
    assert parse_schedule("0s, 500ms,5s,5m,2h,1d,3") == [0, 0.5, 5, 300, 7200, 86400, 3]
    assert parse_schedule("") == []
    default = parse_schedule(DEFAULTS["WEBHOOK_SCHEDULE"])
    assert default == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert sum(default) > 86400


def test_bad_schedule_names_the_setting():
    with pytest.raises(ValueError, match="CIVILITY_WEBHOOK_SCHEDULE: '5 minutes'"):
        parse_schedule("5s,5 minutes")


def test_retry_after_reads_seconds_and_http_dates_capped_at_a_day():
    now = utcnow().replace(microsecond=0)
    in_two_minutes = (now + timedelta(minutes=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_s("30") == 30
    assert retry_after_s(in_two_minutes, now) == 120
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0
    assert retry_after_s("99999999") == 86400
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None
