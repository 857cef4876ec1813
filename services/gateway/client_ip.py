"""The address a request really came from. Behind a reverse proxy the peer is the proxy, and
the client is in X-Forwarded-For — which anyone can also send. So the header is read only
when the peer is a proxy the operator named (MEDCHAT_TRUSTED_PROXIES), and from the right:
the last address that no trusted proxy added is the client (earlier entries are what the
client claimed)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from fastapi import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """ "10.0.0.0/8, 192.168.1.5" → networks; raises ValueError naming a bad entry."""
    networks = []
    for part in (p.strip() for p in spec.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"MEDCHAT_TRUSTED_PROXIES: {part!r} is not an address") from exc
    return tuple(networks)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_ip(request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    networks = parse_networks(request.app.state.settings.trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not _trusted(address, networks):
            return address
    return peer
