"""Network addresses a webhook may reach: globally routable unicast only, looked up with a deadline.

Python's ``ipaddress.is_global`` follows IANA's special-purpose registries as they stood
when that Python was released (3.11 still calls ``fec0::/10``, ``3fff::/20`` and
``192.88.99.0/24`` global), so the registries' entries that are not globally reachable
are listed here too, as of 2025, and an address must pass both.
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA IPv4 and IPv6 Special-Purpose Address Registries: every block whose "Globally
# Reachable" is False or N/A, plus the deprecated site-local, 6to4 relay and multicast
# ranges. The few globally reachable anycast exceptions inside these blocks
# (192.0.0.9/32, 2001:1::1/128, ...) are refused too: no receiver lives there.
NOT_GLOBAL: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "limited broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b::/96", "IPv4/IPv6 translation"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in NOT_GLOBAL)
# Lookups that outlive their deadline keep a thread until the resolver gives up:
# a small pool bounds how many such threads there can be.
_RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dns")


def forbidden_reason(address: IPAddress) -> str | None:
    """Why an address is not a globally routable unicast address (None when it is one)."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 addresses carried inside IPv6 ones (mapped, 6to4, Teredo) reach the same hosts.
        candidates += [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
        candidates += list(address.teredo or ())
    for candidate in candidates:
        for network, why in _NETWORKS:
            if candidate.version == network.version and candidate in network:
                return why
        if not candidate.is_global:
            return "not globally routable"
    return None


def lookup(host: str, port: int, timeout_s: float) -> tuple[str, ...]:
    """The addresses ``host`` resolves to; OSError when it does not within ``timeout_s``."""
    future = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout_s)
    except FutureTimeout:
        future.cancel()
        raise OSError(
            f"lookup timed out after {timeout_s:g}s (CIVILITY_WEBHOOK_DNS_TIMEOUT_S)"
        ) from None
    return tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
