"""The URL Twilio called, which is what it signed, also behind a proxy or load balancer."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request


def public_url(
    request: Request,
    *,
    base_url: str | None,
    trusted_proxies: list[IPv4Network | IPv6Network],
) -> str:
    """``base_url`` + path + query when configured; else the forwarded scheme and host, but
    only from a trusted proxy; else the URL as this process received it."""
    if base_url:  # from the ASGI scope: request.url would build and parse a whole URL first
        raw_query = request.scope["query_string"]
        query = f"?{raw_query.decode('latin-1')}" if raw_query else ""
        return f"{base_url}{request.scope['path']}{query}"
    path = request.url.path
    query = f"?{request.url.query}" if request.url.query else ""
    client = request.client.host if request.client else None
    if client and _trusted(client, trusted_proxies):
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if proto in ("http", "https") and host:
            return f"{proto}://{host}{path}{query}"
    return str(request.url)


def _trusted(client: str, networks: list[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in networks)
