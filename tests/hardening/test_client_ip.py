"""The client IP: X-Forwarded-For believed only from trusted proxies, read from the right."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.api.client_ip import client_ip
from app.config import parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


def request(peer: str | None, *forwarded_for: str) -> Request:
    return Request(
        {
            "type": "http",
            "client": None if peer is None else (peer, 51234),
            "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
        }
    )


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_ip(request("203.0.113.7", "198.51.100.1"), ()) == "203.0.113.7"


def test_spoofed_header_from_an_untrusted_peer_is_ignored() -> None:
    assert client_ip(request("203.0.113.7", "198.51.100.1"), PROXIES) == "203.0.113.7"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_ip(request("10.0.0.2", "198.51.100.1"), PROXIES) == "198.51.100.1"


def test_trusted_hops_are_skipped_from_the_right() -> None:
    # The client wrote "1.2.3.4" itself; the outer proxy 10.1.1.1 saw 198.51.100.1.
    chain = request("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.1.1.1")

    assert client_ip(chain, PROXIES) == "198.51.100.1"


def test_several_headers_form_one_list() -> None:
    chain = request("10.0.0.2", "1.2.3.4", "198.51.100.1, 10.1.1.1")

    assert client_ip(chain, PROXIES) == "198.51.100.1"


@pytest.mark.parametrize("garbage", ["not-an-ip", "198.51.100.1, ", "<script>", ""])
def test_garbage_falls_back_to_the_peer(garbage: str) -> None:
    assert client_ip(request("10.0.0.2", garbage), PROXIES) == "10.0.0.2"


def test_no_header_from_a_trusted_proxy_gives_the_proxy() -> None:
    assert client_ip(request("10.0.0.2"), PROXIES) == "10.0.0.2"


def test_only_trusted_hops_give_the_farthest_one() -> None:
    assert client_ip(request("10.0.0.2", "10.9.9.9, 10.1.1.1"), PROXIES) == "10.9.9.9"


def test_ipv6_peers_and_hops() -> None:
    assert client_ip(request("2001:db8:ffff::1", "2001:db8:1::7"), PROXIES) == "2001:db8:1::7"
    assert client_ip(request("2001:db8:1::7", "198.51.100.1"), PROXIES) == "2001:db8:1::7"
    assert client_ip(request("10.0.0.2", "[2001:db8:1::7]:443"), PROXIES) == "2001:db8:1::7"


def test_ipv4_mapped_peer_counts_as_ipv4() -> None:
    assert client_ip(request("::ffff:10.0.0.2", "198.51.100.1"), PROXIES) == "198.51.100.1"


def test_hop_with_a_port_is_read_without_it() -> None:
    assert client_ip(request("10.0.0.2", "198.51.100.1:4711"), PROXIES) == "198.51.100.1"


def test_no_peer_gives_none() -> None:
    assert client_ip(request(None, "198.51.100.1"), PROXIES) is None
