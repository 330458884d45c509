"""The client's IP address, believing `X-Forwarded-For` only from trusted reverse proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

from app.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234": some proxies append the port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; compare them as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)


def client_ip(connection: HTTPConnection, trusted: Sequence[IPNetwork]) -> str | None:
    """The address of the client that made this request.

    The socket peer, unless the peer is a trusted proxy: then `X-Forwarded-For` is walked
    from the right (each proxy appends the address it saw), past trusted hops, to the first
    untrusted address. Entries left of that are written by the client and could be anything,
    so they are never read; an unparsable hop falls back to the peer.
    """
    peer = connection.client.host if connection.client else None
    if peer is None or not trusted:
        return peer
    peer_address = _parse_ip(peer)
    if peer_address is None or not _is_trusted(peer_address, trusted):
        return peer
    # Several X-Forwarded-For headers form one list, in order (RFC 9110 section 5.3).
    hops = [
        hop for header in connection.headers.getlist("x-forwarded-for") for hop in header.split(",")
    ]
    nearest: IPAddress = peer_address
    for hop in reversed(hops):
        address = _parse_ip(hop)
        if address is None:
            return peer
        if not _is_trusted(address, trusted):
            return str(address)
        nearest = address
    # Every hop is a trusted proxy: the farthest one is the best we know.
    return str(nearest)
