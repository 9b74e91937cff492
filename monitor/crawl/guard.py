"""Which addresses the crawler may connect to: public ones, plus what `[crawl] allow_hosts` lists
(or only what it lists, with `[crawl] only_allow_hosts`, as the tests and the offline demo do).

Checked three times, because the URL text is not enough: on the request (scheme, IP literals),
at name resolution (a public-looking name that resolves to a private address is never connected
to), and on the response (the address actually connected to, IPv6 and IPv4-mapped forms included).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from scrapy.exceptions import IgnoreRequest
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from zope.interface import implementer, provider

from monitor.urls import SAFE_SCHEMES, host_of


class AddressPolicy:
    """Pure decision: may we talk to this host / IP?"""

    def __init__(self, allow_hosts: Iterable[str] = (), only_listed: bool = False):
        self.only_listed = only_listed
        self.hosts: set[str] = set()
        self.networks: list[ipaddress._BaseNetwork] = []
        for entry in allow_hosts:
            entry = entry.strip().lower().strip("[]")
            try:
                self.networks.append(_normalise_network(ipaddress.ip_network(entry, strict=False)))
            except ValueError:
                self.hosts.add(entry.rstrip("."))

    def host_allowed(self, host: str) -> bool:
        return host.lower().strip("[]").rstrip(".") in self.hosts

    def ip_allowed(self, address: str) -> bool:
        try:
            ip = normalise_ip(ipaddress.ip_address(address.strip("[]").split("%")[0]))
        except ValueError:
            return False
        if any(ip.version == net.version and ip in net for net in self.networks):
            return True
        return ip.is_global and not ip.is_multicast and not self.only_listed

    @classmethod
    def from_settings(cls, settings) -> AddressPolicy:
        return cls(settings.getlist("MONITOR_ALLOW_HOSTS"),
                   settings.getbool("MONITOR_ONLY_ALLOW_HOSTS"))

    def check_url(self, url: str) -> str | None:
        """A sentence saying why url is refused, or None when it may be requested."""
        scheme = url.split(":", 1)[0].lower()
        if scheme not in SAFE_SCHEMES:
            return f"The address {url[:200]} is not an http(s) address and was not followed."
        host = host_of(url)
        if not host:
            return f"The address {url[:200]} has no host name."
        if self.host_allowed(host):
            return None
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None  # a name: judged when it resolves
        if not self.ip_allowed(host):
            return blocked_sentence(url, host)
        return None


def normalise_ip(ip):
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _normalise_network(net):
    if net.version == 6 and net.network_address.ipv4_mapped is not None and net.prefixlen >= 96:
        return ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
    return net


def blocked_sentence(url: str, address: str) -> str:
    try:
        public = ipaddress.ip_address(address.strip("[]").split("%")[0]).is_global
    except ValueError:
        public = False
    if public:  # refused only because [crawl] only_allow_hosts is on
        return (f"The address {url[:200]} leads to {address}, which is not in [crawl] allow_hosts; "
                "this configuration fetches nothing else (only_allow_hosts = true).")
    return (f"The address {url[:200]} leads to the private or local network address {address}, "
            "which the crawler may not fetch (add it to [crawl] allow_hosts if it is trusted).")


# Host names whose resolution was refused in this process, for a readable error message.
BLOCKED_RESOLUTIONS: dict[str, str] = {}


class GuardRequestMiddleware:
    """Downloader middleware (first): refuses non-http schemes and disallowed IP literals."""

    def __init__(self, policy: AddressPolicy):
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler):
        return cls(AddressPolicy.from_settings(crawler.settings))

    def process_request(self, request, spider=None):
        reason = self.policy.check_url(request.url)
        if reason:
            raise IgnoreRequest(reason)
        return None


class GuardResponseMiddleware:
    """Downloader middleware (next to the downloader): checks the address actually connected to."""

    def __init__(self, policy: AddressPolicy):
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler):
        return cls(AddressPolicy.from_settings(crawler.settings))

    def process_response(self, request, response, spider=None):
        address = response.ip_address
        if address is None or self.policy.host_allowed(host_of(request.url)):
            return response
        if not self.policy.ip_allowed(str(address)):
            raise IgnoreRequest(blocked_sentence(request.url, str(address)))
        return response


@provider(IResolutionReceiver)
class _FilteringReceiver:
    def __init__(self, receiver, host: str, policy: AddressPolicy):
        self.receiver = receiver
        self.host = host
        self.policy = policy

    def resolutionBegan(self, resolution):
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address):
        host = getattr(address, "host", None)
        if host is None or self.policy.ip_allowed(host):
            self.receiver.addressResolved(address)
        else:
            BLOCKED_RESOLUTIONS[self.host] = host

    def resolutionComplete(self):
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class GuardedResolver:
    """DNS_RESOLVER: drops resolved addresses the policy refuses, so they are never connected to."""

    def __init__(self, reactor, policy: AddressPolicy):
        self.reactor = reactor
        self.policy = policy
        self.original = reactor.nameResolver

    @classmethod
    def from_crawler(cls, crawler, reactor):
        return cls(reactor, AddressPolicy.from_settings(crawler.settings))

    def install_on_reactor(self):
        self.reactor.installNameResolver(self)

    def resolveHostName(self, resolutionReceiver, hostName, portNumber=0, addressTypes=None,
                        transportSemantics="TCP"):
        if self.policy.host_allowed(hostName):
            return self.original.resolveHostName(resolutionReceiver, hostName, portNumber,
                                                 addressTypes, transportSemantics)
        return self.original.resolveHostName(
            _FilteringReceiver(resolutionReceiver, hostName, self.policy), hostName, portNumber,
            addressTypes, transportSemantics)
