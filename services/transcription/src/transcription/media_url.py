"""Which URLs the service may fetch (SSRF rules, docs/adr/0009-transcription.md).

A media URL is fetched only when all of these hold:

- it parses (with httpx's own parser, the one that makes the request) without user info,
  query or fragment;
- its host[:port] is on the allow-list (``MEDIA_ALLOWED_HOSTS``) and its scheme is https; an
  entry without a port means 443. Plain http only to an entry listed with its port, that exact
  endpoint (the Twilio simulator: ``127.0.0.1:8090``, ``host.docker.internal:8090``);
- its path is exactly Twilio's media path,
  ``/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}``, for the
  tenant's own account and the message being transcribed.

A redirect target must pass the first two rules (the media CDN has its own paths).
Credentials are sent only to the media URL's own origin (``same_origin``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from .failures import URL_NOT_ALLOWED, TranscriptionFailure

MEDIA_PATH = re.compile(
    r"/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})"
    r"/Messages/(?P<message>(?:MM|SM)[0-9a-fA-F]{32})"
    r"/Media/(?P<media>ME[0-9a-fA-F]{32})"
)
DEFAULT_PORTS = {"https": 443, "http": 80}


class UrlNotAllowed(TranscriptionFailure):
    def __init__(self, detail: str) -> None:
        super().__init__(URL_NOT_ALLOWED, detail)


@dataclass(frozen=True, slots=True)
class AllowList:
    """``host`` / ``host:port`` entries (``[v6]:port`` for IPv6), case-insensitive."""

    entries: frozenset[tuple[str, int | None]]

    @classmethod
    def parse(cls, value: str | Iterable[str]) -> AllowList:
        items = value.split(",") if isinstance(value, str) else list(value)
        entries = set()
        for item in (i.strip().lower() for i in items):
            if not item:
                continue
            if "/" in item or "@" in item:
                raise ValueError(f"MEDIA_ALLOWED_HOSTS: {item!r} is not host or host:port")
            url = httpx.URL(f"https://{item}")  # its port is None for none or 443
            entries.add((url.host.rstrip("."), url.port))
        return cls(frozenset(entries))

    def allows(self, url: httpx.URL) -> bool:
        host = url.host.rstrip(".")
        if url.scheme == "https":
            port = url.port or DEFAULT_PORTS["https"]
            return (host, port) in self.entries or (
                port == DEFAULT_PORTS["https"] and (host, None) in self.entries)
        if url.scheme == "http":  # plain text only to an endpoint listed with its port
            return (host, url.port or DEFAULT_PORTS["http"]) in self.entries
        return False

    def __str__(self) -> str:
        return ",".join(sorted(f"{h}:{p}" if p else h for h, p in self.entries))


def _parse(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UrlNotAllowed("not a URL") from None
    if not url.is_absolute_url or url.userinfo or url.fragment or "\\" in raw:
        raise UrlNotAllowed("not a plain absolute URL")
    return url


def _on_allowed_host(url: httpx.URL, allowed: AllowList) -> None:
    if not allowed.allows(url):
        raise UrlNotAllowed(f"{url.scheme}://{url.netloc.decode('ascii', 'replace')} is not "
                            "an allowed media host")


def check_media_url(raw: str, *, account_sid: str, message_sid: str,
                    allowed: AllowList) -> httpx.URL:
    """The URL to fetch a voice note from, or ``UrlNotAllowed``."""
    url = _parse(raw)
    _on_allowed_host(url, allowed)
    path = url.raw_path.decode("ascii", "replace")  # includes any query: none is allowed
    match = MEDIA_PATH.fullmatch(path)
    if match is None:
        raise UrlNotAllowed("not a Twilio media path")
    if match["account"] != account_sid:
        raise UrlNotAllowed("the media belongs to another account than the tenant's")
    if match["message"] != message_sid:
        raise UrlNotAllowed("the media belongs to another message")
    return url


def check_redirect(current: httpx.URL, location: str, allowed: AllowList) -> httpx.URL:
    """Where a redirect points (relative locations resolved), or ``UrlNotAllowed``."""
    url = _parse(str(current.join(location)))
    _on_allowed_host(url, allowed)
    return url


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port or DEFAULT_PORTS.get(a.scheme)) == (
        b.scheme, b.host, b.port or DEFAULT_PORTS.get(b.scheme))
