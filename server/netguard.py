"""The address guard for server-side requests (DESIGN.md §3): which URLs and resolved IPs a media
fetch or a webhook delivery may reach, and the pinned HTTP client both use. The rules are pure
functions over `ipaddress` objects, testable without a network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from server.errors import InvalidURL, download_failed

Resolver = Callable[[str, int], Awaitable[list[str]]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges `is_global` does not exclude on every Python we support, or that hide an IPv4 inside IPv6.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("100.64.0.0/10"),  # CGNAT: the provider's internal side
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("2001::/23"),  # IETF protocol assignments incl. Teredo
    ipaddress.ip_network("fc00::/7"),  # unique-local
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one forwards to (mapped, 6to4, NAT64), which is what gets reached."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """True when `ip` is a globally routable unicast address a fetch may go to."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
    special = (
        ip.is_loopback,
        ip.is_private,
        ip.is_link_local,
        ip.is_multicast,
        ip.is_reserved,
        ip.is_unspecified,
    )
    if any(special) or not ip.is_global:
        return False
    return not any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version)


def parse_allow_hosts(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """Split operator entries into lower-cased hostnames and networks (a bare IP is a /32 or /128)."""
    names: set[str] = set()
    nets: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().strip("[]").lower()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return frozenset(names), tuple(nets)


class AddressGuard:
    """Decides whether a (host, resolved IP) pair may be contacted under an operator's policy."""

    def __init__(self, *, allow_private: bool, allow_hosts: Iterable[str] = ()) -> None:
        self._allow_private = allow_private
        self._names, self._nets = parse_allow_hosts(allow_hosts)

    def host_allowed(self, host: str) -> bool:
        """An allow-listed hostname may resolve anywhere: the operator vouches for it."""
        return host.lower().rstrip(".") in self._names

    def ip_allowed(self, host: str, ip: IPAddress) -> bool:
        """True when `ip` (resolved from `host`) may be contacted."""
        if self._allow_private or is_public(ip) or self.host_allowed(host):
            return True
        # Compare the unwrapped form too, so `::ffff:10.0.0.5` matches an allowed 10.0.0.0/8.
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            inner = _embedded_ipv4(ip)
            if inner is not None:
                candidates.append(inner)
        return any(c in net for c in candidates for net in self._nets if net.version == c.version)


def parse_ip(text: str) -> IPAddress | None:
    """`text` as an IP address (brackets and an IPv6 zone id allowed), or None for a hostname."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Target:
    """One hop of a fetch: the URL as the client wrote it, split into what pinning it needs."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host, no brackets
    port: int


def parse_target(url: str, field: str) -> Target:
    """An http(s) URL with a host and no credentials, else InvalidURL naming `field`."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InvalidURL(f"{field}: malformed URL") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "(none)"
        raise InvalidURL(f"{field}: URL scheme {scheme!r} is not allowed; use http(s):// or a data URI")
    if not parsed.raw_host:
        raise InvalidURL(f"{field}: URL has no host")
    if parsed.userinfo:
        # Credentials in a URL would be forwarded to whatever host a redirect picks.
        raise InvalidURL(f"{field}: credentials in the URL are not allowed")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return Target(url=parsed, host=parsed.raw_host.decode("ascii"), port=port)


async def system_resolver(host: str, port: int) -> list[str]:
    """The OS resolver (getaddrinfo), off the event loop; distinct addresses in its order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_ips(target: Target, guard: AddressGuard, resolver: Resolver, *, field: str) -> list[str]:
    """Resolve once and refuse if ANY address is off-limits; the caller connects to these only."""
    literal = parse_ip(target.host)
    if literal is not None:
        ips = [str(literal)]
    else:
        try:
            ips = await resolver(target.host, target.port)
        except (OSError, UnicodeError):
            raise download_failed(f"could not resolve host {target.host}") from None
        if not ips:
            raise download_failed(f"could not resolve host {target.host}")
    for ip_text in ips:
        ip = parse_ip(ip_text)
        if ip is None or not guard.ip_allowed(target.host, ip):
            raise InvalidURL(f"{field}: URL host {target.host} is not a public address")
    return ips


def guarded_client(timeout_s: float) -> httpx.AsyncClient:
    """The HTTP client for requests to checked addresses (`pinned_request`), redirects not followed.

    No keep-alive: a pooled TLS connection to an IP must never serve another hostname's SNI. No
    proxies from the environment: a proxy would resolve the name again, undoing the pin. CA bundles
    from the environment (SSL_CERT_FILE/DIR) still apply, for operators' own CAs."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        verify=httpx.create_ssl_context(trust_env=True),
        timeout=timeout_s,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def pinned_request(
    client: httpx.AsyncClient,
    method: str,
    target: Target,
    ip: str,
    *,
    headers: Mapping[str, str],
    content: bytes | None = None,
) -> httpx.Request:
    """A request to the checked `ip` carrying the original Host (and SNI), so DNS is not asked twice."""
    pinned = target.url.copy_with(host=ip.split("%", 1)[0], fragment=None)
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    return client.build_request(
        method,
        pinned,
        headers={"Host": target.url.netloc.decode("ascii"), **headers},
        content=content,
        extensions=extensions,
    )
