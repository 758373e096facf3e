"""``pybokeh serve``: a local web page to open a photo, click to focus, preview and download the render.

Needs the ``web`` extra (``pip install "pybokeh[web]"``: Starlette and uvicorn).
Importing this package needs nothing beyond pybokeh's own dependencies;
:func:`create_app` and :func:`serve` raise an ImportError naming the extra
when it is missing.  Modules: :mod:`.preview` (the proxy and its lens
settings), :mod:`.app` (the ASGI app and its API), :mod:`.uploads` (untrusted
files), :mod:`.sessions` (open photos and render jobs), :mod:`.command` (the
subcommand); the page is ``static/``.
"""
from __future__ import annotations

from typing import Any

WEB_EXTRA_HINT = 'pip install "pybokeh[web]"'

__all__ = ["create_app", "serve", "bind", "server", "WEB_EXTRA_HINT"]


def _need_web() -> None:
    missing = []
    for module in ("starlette", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(f"pybokeh serve needs {' and '.join(missing)}: install the web extra, {WEB_EXTRA_HINT}")


def create_app(**options: Any):
    """The ASGI app (see :func:`pybokeh.serve.app.create_app` for the options)."""
    _need_web()
    from .app import create_app as create

    return create(**options)


def bind(host: str = "127.0.0.1", port: int = 8000):
    """A listening TCP socket on ``host``:``port`` (0: a free port); OSError when the address is taken."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def server(sock, **options: Any):
    """A uvicorn server for the app on a socket from :func:`bind`; ``server.run(sockets=[sock])`` serves.

    The app answers only to loopback host names when the socket is on a loopback address.
    """
    _need_web()
    import uvicorn

    from .app import LOOPBACK_HOSTS

    host = sock.getsockname()[0]
    options.setdefault("trusted_hosts", LOOPBACK_HOSTS + (host,) if is_loopback(host) else None)
    config = uvicorn.Config(create_app(**options), log_level="warning", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve(host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve the app on ``host``:``port`` until interrupted (options: :func:`pybokeh.serve.app.create_app`)."""
    sock = bind(host, port)
    server(sock, **options).run(sockets=[sock])


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
