"""The redis-py client RedisStore uses, and the translation of its errors into ones a user can act on."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from lib.core import redact_url
from lib.sessions.base import StoreError, StoreUnavailable

P = ParamSpec("P")
# What to do when a server named by REDIS_URL does not answer (the embedded store says its own).
UNREACHABLE_ADVICE = "Start the server or fix REDIS_URL, then retry"
T = TypeVar("T")


def _retry() -> Retry:
    # A restarting server or a failover gets a few quick, jittered retries; then the user gets an error.
    # Retrying writes is safe: the append script skips what a first, timed-out attempt already stored.
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3)


def connect(url: str, *, cluster: bool = False, socket_timeout: float = 10.0) -> redis.Redis | RedisCluster:
    """A redis-py client for ``redis://``, ``rediss://`` or ``unix://`` URLs, with retry and timeouts."""
    options: dict[str, Any] = {
        "decode_responses": True, "retry": _retry(), "socket_connect_timeout": 3, "socket_timeout": socket_timeout,
    }
    try:
        if cluster:
            return RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(url, **options)
    except (ValueError, redis.RedisError) as exc:
        raise StoreUnavailable(f"Cannot use REDIS_URL {redact_url(url)}: {exc}") from exc


# redis-py quotes the whole failed command of a pipeline, message text included; the reason is enough.
_PIPELINE_PREFIX = re.compile(r"^Command # \d+ \(.*?\) of pipeline caused error: ", re.DOTALL)


def refusal(exc: redis.RedisError) -> str:
    """The server's reason, without the quoted command, plus what to do about the common one."""
    reason = _PIPELINE_PREFIX.sub("", str(exc))
    if "maxmemory" in reason or reason.startswith("OOM"):
        return (f"the server is out of memory ({reason}). Free memory or raise its maxmemory; "
                "nothing was written.")
    return reason


def translate(method: Callable[P, T]) -> Callable[P, T]:
    """Turn redis-py's exceptions into StoreUnavailable / StoreError with a message a user can act on."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        location = getattr(args[0], "location", "the configured server")
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if isinstance(exc, redis.BusyLoadingError):  # up again after a restart, reading its AOF/RDB
                reason = f"Redis at {location} is restarting: it is still loading its data ({exc})."
            else:
                reason = f"Redis at {location} is not reachable ({exc})."
            advice = getattr(args[0], "unreachable_advice", None) or UNREACHABLE_ADVICE
            raise StoreUnavailable(f"{reason} {advice}; nothing was written.", reason=reason) from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis at {location} refused the command: {refusal(exc)}") from exc

    return wrapper
