"""One rate-limit bucket per purpose, per real client IP behind CIVILITY_TRUSTED_PROXIES."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def limited(config):
    """An app whose buckets are tiny: 2 public reads, 3 sign-ins, 2 failed keys per IP."""
    config.update(
        RATELIMIT_ENABLED=True,
        RATELIMIT_PER_IP="2 per minute",
        RATELIMIT_PER_SIGN_IN_IP="3 per minute",
        RATELIMIT_PER_FAILED_KEY_IP="2 per minute",
    )
    return config


@pytest.fixture
def public_site(limited, make_site):
    return make_site(public_reads=True)


def read(client, site_id: int, ip: str = "127.0.0.1", forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    answer = client.get(
        f"/v1/articles/a/comments?site={site_id}",
        headers=headers,
        environ_base={"REMOTE_ADDR": ip},
    )
    return answer.status_code


def sign_in(client, key: str, ip: str = "127.0.0.1") -> int:
    answer = client.post("/dashboard/sign-in", json={"key": key}, environ_base={"REMOTE_ADDR": ip})
    return answer.status_code


def test_readers_spending_their_bucket_do_not_lock_moderators_out(client, public_site):
    assert [read(client, public_site.id) for _ in range(3)] == [404, 404, 429]
    assert sign_in(client, public_site.moderator) == 200


def test_sign_in_has_its_own_bucket(client, public_site):
    assert [sign_in(client, public_site.moderator) for _ in range(4)] == [200, 200, 200, 429]
    assert read(client, public_site.id) == 404  # public reads are still open


def test_failed_key_lookups_are_limited_per_ip(client, site):
    bad = {"Authorization": "Bearer civ_notakey00000000000000"}
    codes = [
        client.get("/v1/queue", headers=bad, environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]
    # Further guesses from there cost no lookup, and sign-in guesses share the bucket.
    assert sign_in(client, "civ_wrongwrongwrong", ip="10.1.1.1") == 429
    # Another IP, and valid keys elsewhere, are unaffected.
    other = client.get("/v1/queue", headers=bad, environ_base={"REMOTE_ADDR": "10.2.2.2"})
    assert other.status_code == 401
    good = client.get("/v1/queue", headers=site.auth("moderator"))
    assert good.status_code == 200


def test_without_trusted_proxies_forwarded_headers_are_ignored(client, public_site):
    # A client cannot pick a fresh bucket by sending its own X-Forwarded-For.
    codes = [read(client, public_site.id, forwarded=f"198.51.100.{n}") for n in range(3)]
    assert codes == [404, 404, 429]


@pytest.fixture
def proxied(config):
    config["TRUSTED_PROXIES"] = 1


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(proxied, client, public_site):
    proxy = "172.18.0.5"  # every request arrives from the proxy's address
    first = [read(client, public_site.id, proxy, "203.0.113.7") for _ in range(3)]
    assert first == [404, 404, 429]
    assert read(client, public_site.id, proxy, "203.0.113.8") == 404
    # Only the hop the proxy appended counts: a client's own entry in front is not believed.
    assert read(client, public_site.id, proxy, "1.2.3.4, 203.0.113.7") == 429
    assert client.application.wsgi_app.x_for == 1
