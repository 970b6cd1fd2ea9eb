"""server/netguard.py: which addresses a server-side fetch may reach (DESIGN.md §3)."""

from __future__ import annotations

import ipaddress

import pytest

from server.netguard import AddressGuard, is_public, parse_allow_hosts, parse_ip

NON_PUBLIC = [
    "127.0.0.1",
    "127.255.0.9",
    "10.0.0.5",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "198.18.0.1",
    "192.0.0.8",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    "64:ff9b::a00:5",  # NAT64 wrapping 10.0.0.5
    "2001::1",  # Teredo
    "2001:db8::1",  # documentation
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("text", NON_PUBLIC)
def test_non_public(text: str) -> None:
    assert not is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", PUBLIC)
def test_public(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


def test_allow_private_allows_everything() -> None:
    guard = AddressGuard(allow_private=True)
    assert guard.ip_allowed("x", ipaddress.ip_address("127.0.0.1"))


def test_allow_hosts_by_name_and_network() -> None:
    guard = AddressGuard(allow_private=False, allow_hosts=["Minio.Internal.", "10.0.0.0/8", "[fd00::1]"])
    ip = ipaddress.ip_address
    assert guard.ip_allowed("minio.internal", ip("192.168.1.2"))
    assert guard.ip_allowed("anything", ip("10.9.8.7"))
    assert guard.ip_allowed("anything", ip("::ffff:10.9.8.7"))  # the mapped form of an allowed IP
    assert guard.ip_allowed("anything", ip("fd00::1"))
    assert not guard.ip_allowed("anything", ip("fd00::2"))
    assert not guard.ip_allowed("other.internal", ip("192.168.1.2"))
    assert not guard.ip_allowed("anything", ip("127.0.0.1"))


def test_parse_allow_hosts() -> None:
    names, nets = parse_allow_hosts(["a.example", " ", "127.0.0.2", "10.0.0.0/8"])
    assert names == {"a.example"}
    assert [str(n) for n in nets] == ["127.0.0.2/32", "10.0.0.0/8"]


def test_parse_ip() -> None:
    assert parse_ip("[::1]") == ipaddress.ip_address("::1")
    assert parse_ip("example.com") is None
