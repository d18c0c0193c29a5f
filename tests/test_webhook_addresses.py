"""Webhook receivers must be globally routable: every special-purpose range is refused."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest

from service import addresses, webhooks
from service.addresses import NOT_GLOBAL, forbidden_reason
from service.webhooks import UnsafeURL


def _inside(network: str) -> list[str]:
    """The first, a middle and the last address of ``network``."""
    net = ipaddress.ip_network(network)
    return [str(net[0]), str(net[net.num_addresses // 2]), str(net[-1])]


SPECIAL = [address for network, _ in NOT_GLOBAL for address in _inside(network)]


@pytest.mark.parametrize("address", SPECIAL)
def test_every_special_purpose_address_is_refused(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is not None
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeURL, match="not allowed"):
        webhooks.resolve(f"http://{host}/hook", allow_private=False)


@pytest.mark.parametrize(
    "address",
    # The ones the audit found accepted, and IPv4 carried inside IPv6.
    ["fec0::1", "3fff::1", "192.88.99.1", "::ffff:10.0.0.1", "2002:a00:1::1", "2001::a00:1"],
)
def test_addresses_the_audit_found_are_refused(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450::1"]
)
def test_public_unicast_addresses_are_allowed(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_special_ranges_pass_when_private_targets_are_allowed():
    target = webhooks.resolve("http://[fec0::1]:8080/hook", allow_private=True)
    assert target.addresses == ("fec0::1",)


def test_a_slow_lookup_gives_up_at_its_deadline(monkeypatch):
    # getaddrinfo has no timeout of its own; a resolver that never answers stands in here.
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host, *args, **kwargs):
        if host == "slow.example":
            release.wait(10)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        with pytest.raises(UnsafeURL, match="timed out"):
            webhooks.resolve("https://slow.example/hook", allow_private=True, timeout_s=0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 3


def test_registration_answers_422_when_the_lookup_times_out(client, site, config, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(addresses.socket, "getaddrinfo", lambda *a, **k: release.wait(10))
    client.application.config["WEBHOOK_DNS_TIMEOUT_S"] = 0.2
    try:
        answer = client.post(
            "/v1/webhooks", json={"url": "https://slow.example/hook"}, headers=site.auth("admin")
        )
    finally:
        release.set()
    assert answer.status_code == 422
    assert "timed out" in answer.get_json()["message"] + str(answer.get_json()["errors"])
