"""Private places for the embedded server: directories, lock files and sockets only this user owns.

Whoever can connect to the embedded server's socket reads every session, so nothing here trusts a path
by its name: a directory must be this user's and closed to others (0700), a socket file this user's, and
the process behind a socket must run as this user (SO_PEERCRED on Linux). Anything else is refused with
``EmbeddedNotPrivate``, never adopted.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.connection import UnixDomainSocketConnection

from lib.core import HistoryLabError
from lib.sessions.base import StoreUnavailable

log = logging.getLogger(__name__)


class EmbeddedNotPrivate(StoreUnavailable, HistoryLabError):
    """A directory, socket or server that another user owns or can enter: refused, never adopted."""


def _refuse(path: Path | str, problem: str) -> EmbeddedNotPrivate:
    return EmbeddedNotPrivate(
        f"Refusing the embedded Valkey's {path}: {problem}. Another user could read or replace your "
        "sessions through it. Remove it (or set HISTORY_LAB_DATA_DIR to a directory of your own) and "
        "restart the app."
    )


def _check_owner(path: Path, info: os.stat_result) -> None:
    if info.st_uid != os.geteuid():
        raise _refuse(path, f"it belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})")


def private_dir(path: Path, *, tighten: bool = False) -> Path:
    """Create ``path`` 0700, or check an existing one is this user's and closed to others.

    ``tighten`` chmods an existing directory of ours that others can enter (a data dir made by an older
    version); without it such a directory is refused, since someone may have planted a socket in it.
    """
    try:
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; be exact
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(path, "it is not a directory (a symlink or a file is in its place)")
    _check_owner(path, info)
    if info.st_mode & 0o077:
        if not tighten:
            raise _refuse(path, f"its mode is {stat.S_IMODE(info.st_mode):04o}, so other users can enter it "
                                "(it must be 0700)")
        log.warning("Tightening %s from %04o to 0700", path, stat.S_IMODE(info.st_mode))
        os.chmod(path, 0o700)
    return path


def is_private_dir(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def check_socket_file(path: Path) -> None:
    """A socket file may be missing (not started) but never a non-socket or another user's."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise _refuse(path, "it is not a unix socket")
    _check_owner(path, info)


def check_peer(sock: socket.socket, path: str) -> int | None:
    """The server's pid; raises EmbeddedNotPrivate when another user runs the server behind ``path``.

    Linux only (SO_PEERCRED); elsewhere the private directory is the guard.
    """
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    if uid != os.geteuid():
        sock.close()
        raise _refuse(path, f"the server behind it runs as uid {uid} (pid {pid}), not as you (uid {os.geteuid()})")
    return int(pid)


class PrivateSocketConnection(UnixDomainSocketConnection):
    """A unix-socket connection that refuses a server run by another user.

    ``on_lost`` (optional) is called when nothing answers on the socket; it brings the server back and
    returns the socket path to use, and the connection is tried once more.
    """

    def __init__(self, *, on_lost: Callable[[], str] | None = None, **kwargs: Any) -> None:
        # redis-py's connection classes are untyped; Any says so once, here, instead of leaking further.
        base: Any = super()
        base.__init__(**kwargs)
        self.on_lost = on_lost

    def _connect(self) -> socket.socket:
        base: Any = super()
        try:
            sock: socket.socket = base._connect()
        except OSError:
            if self.on_lost is None:
                raise
            self.path = self.on_lost()
            sock = base._connect()
        check_peer(sock, self.path)
        return sock


def open_private(path: Path) -> int:
    # O_NOFOLLOW: a lock file is never a symlink to somewhere else.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        _check_owner(path, os.fstat(fd))
    except EmbeddedNotPrivate:
        os.close(fd)
        raise
    return fd
