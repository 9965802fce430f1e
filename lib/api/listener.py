"""TCP_NODELAY on the server's listening sockets, so a reused (keep-alive) connection answers at once.

Why this exists: ``streamlit run`` binds the listening socket itself (``socket.socket(family)``, whose
``proto`` is 0) and hands it to uvicorn. asyncio sets TCP_NODELAY on an accepted connection only when its
``proto`` is IPPROTO_TCP, so every connection of this server kept Nagle's algorithm. A response written
in two parts (headers, then body) then waits for the client's delayed ACK of the first part: about 40 ms
on every request after the first on a connection (fresh connections escape it, since a new TCP
connection starts in quick-ACK mode). Measured on ``/_stcore/health``: 0.65 ms fresh, 44 ms reused.

On Linux an accepted socket inherits TCP_NODELAY from its listening socket, so setting it once on the
listener at startup (the lifespan runs after the socket is bound, before the first accept) fixes every
route, the pages' own assets included. Elsewhere the call is harmless.

    st.App(..., lifespan=nodelay_lifespan(services.lifespan))
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

log = logging.getLogger(__name__)

AppT = TypeVar("AppT")
Lifespan = Callable[[AppT], AbstractAsyncContextManager[None]]

# Where the process's open file descriptors are listed (Linux: /proc/self/fd; macOS and Linux: /dev/fd).
FD_DIRS = ("/proc/self/fd", "/dev/fd")
TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _open_fds() -> list[int]:
    for folder in FD_DIRS:
        try:
            return sorted(int(name) for name in os.listdir(folder) if name.isdigit())
        except OSError:
            continue
    return []


def _nodelay_if_tcp_listener(fd: int) -> bool:
    """Set TCP_NODELAY on ``fd`` when it is a listening TCP socket; True when it was set."""
    try:
        # A duplicate, so closing our socket object leaves the server's descriptor open.
        copy = os.dup(fd)
    except OSError:  # closed since it was listed
        return False
    try:
        sock = socket.socket(fileno=copy)
    except OSError:  # not a socket: nothing to do (and the duplicate is ours to close)
        os.close(copy)
        return False
    with sock:
        try:
            if sock.family not in TCP_FAMILIES or sock.type != socket.SOCK_STREAM:
                return False
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                return False
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return True
        except OSError:
            return False


def nodelay_listeners() -> int:
    """Set TCP_NODELAY on every listening TCP socket of this process; returns how many were set."""
    done = sum(_nodelay_if_tcp_listener(fd) for fd in _open_fds())
    if not done:
        log.warning("Found no listening TCP socket to set TCP_NODELAY on: requests on a reused connection "
                    "may wait about 40 ms each (Nagle's algorithm meeting delayed ACKs).")
    return done


def nodelay_lifespan(inner: Lifespan[AppT]) -> Lifespan[AppT]:
    """``inner`` with TCP_NODELAY set on the listening sockets first, at server startup."""

    @contextlib.asynccontextmanager
    async def lifespan(app: AppT) -> AsyncIterator[None]:
        nodelay_listeners()
        async with inner(app):
            yield

    return lifespan
