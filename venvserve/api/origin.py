"""Host and Origin checks: no DNS rebinding, no cross-site request that changes state.

A page on any web site can make a browser POST to ``http://127.0.0.1:8000``
(loading models, building envs), and a page served from a name that later
resolves to 127.0.0.1 (DNS rebinding) can even read the answers. Two checks,
as a pure ASGI middleware ahead of everything else:

- ``Host`` must name this server: the bound address, ``localhost``,
  ``127.0.0.1``, ``[::1]`` or an ``--allowed-hosts`` entry (``*.example.org``
  matches subdomains; ``*`` turns the check off). A server bound to every
  interface also answers to IP literals and the machine's own names. Else
  403 ``forbidden_host``. A request without ``Host`` (HTTP/1.0) is no
  browser's and passes.
- ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` with an ``Origin`` that is not
  this server's own (scheme-less host:port equal to ``Host``) nor in
  ``--allowed-origins`` get 403 ``forbidden_origin``. Browsers always send
  ``Origin`` on such requests; the web page sends its own, which matches.
"""

import ipaddress
import json
import socket

from ..errors import error_body

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
UNSAFE = frozenset(("POST", "PUT", "PATCH", "DELETE"))


def host_name(value: str) -> str:
    """``example.org:8000`` → ``example.org``; ``[::1]:8000`` → ``::1``; lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    def __init__(self, bound: str, allowed_hosts=(), allowed_origins=()):
        bound = host_name(bound) if bound.startswith("[") else bound.lower()
        self.any_host = "*" in allowed_hosts
        self.wildcard_bind = bound in WILDCARDS
        names = {*LOOPBACK_NAMES, bound, *(h.lower() for h in allowed_hosts if not h.startswith("*."))}
        if self.wildcard_bind:
            names.update(n.lower() for n in (socket.gethostname(), socket.getfqdn()) if n)
        self.names = frozenset(names)
        self.suffixes = tuple(h[1:].lower() for h in allowed_hosts if h.startswith("*."))
        self.any_origin = "*" in allowed_origins
        self.origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    def host_ok(self, host: str) -> bool:
        name = host_name(host)
        return (self.any_host or name in self.names or name.endswith(self.suffixes)
                or (self.wildcard_bind and _is_ip(name)))

    def origin_ok(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if self.any_origin or origin in self.origins:
            return True
        scheme, sep, rest = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and host is not None and rest == host.strip().lower()


class HostOriginMiddleware:
    def __init__(self, app, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        if host is not None and not self.policy.host_ok(host):
            return await _deny(send, "forbidden_host", "this server does not answer to that Host name",
                               "open the server by its own address, or start it with --allowed-hosts NAME")
        if origin is not None and scope["method"] in UNSAFE and not self.policy.origin_ok(origin, host):
            return await _deny(send, "forbidden_origin", "a cross-site request may not change this server",
                               "start the server with --allowed-origins ORIGIN to let that site in")
        return await self.app(scope, receive, send)


async def _deny(send, code: str, message: str, hint: str) -> None:
    body = json.dumps(error_body(code, message, hint)).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
