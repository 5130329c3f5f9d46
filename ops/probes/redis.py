"""The Redis probe: the rate-limit counters, the cache and (by default) the broker live there."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import redis
from django.conf import settings

from ops.probes.result import (
    PROBE_TIMEOUT,
    CheckResult,
    error_text,
    failed,
    not_configured,
    passed,
    unreachable,
    warned,
)

logger = logging.getLogger(__name__)


def host_is_public(host: str) -> bool:
    """Whether any address of ``host`` is reachable from the internet (not loopback, private,
    link-local...). An unresolvable name is not judged public: it reaches nothing."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
    return any(address.is_global for address in addresses)


def _answers_without_password(url: str, timeout: float) -> bool:
    parts = urlsplit(url)
    client = redis.Redis(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,
        ssl=parts.scheme == "rediss",
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )
    try:
        return bool(client.ping())
    except (redis.AuthenticationError, redis.ResponseError):
        return False  # NOAUTH: a password is required, as it should be
    finally:
        client.close()


def redis_ping(url: str, *, timeout: float) -> None:
    """Ping the Redis server at ``url``; raises redis.RedisError when it does not answer."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def probe_redis(
    *,
    url: str | None = None,
    timeout: float = PROBE_TIMEOUT,
    thorough: bool = False,
    is_public: Callable[[str], bool] = host_is_public,
) -> CheckResult:
    """Whether Redis (default REDIS_URL) answers.

    ``thorough`` also asks what matters before going live and costs a name lookup and a
    second connection: whether a Redis on a public address takes commands without a
    password, or carries its password unencrypted.
    """
    url = url if url is not None else settings.REDIS_URL
    if not url:
        return not_configured(
            "redis",
            "REDIS_URL is not set: broker, results and rate limits use the one-machine embedded fallbacks",
            "run Redis on a private network and set REDIS_URL=redis://:password@redis:6379/0",
        )
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else unquote(parts.path)
    try:
        redis_ping(url, timeout=timeout)
    except redis.RedisError as exc:
        reason = f"Redis at {where} does not answer ({error_text(exc)})"
        logger.warning("redis probe: %s", reason)
        return unreachable("redis", reason, "check REDIS_URL")
    if not thorough:
        return passed("redis", f"Redis at {where} answers")
    if parts.scheme == "unix" or not parts.hostname or not is_public(parts.hostname):
        return passed("redis", f"Redis at {where} answers, on a private address")
    try:
        open_to_all = _answers_without_password(url, timeout)
    except redis.RedisError:
        open_to_all = False
    if open_to_all:
        return failed(
            "redis",
            f"Redis at {where} is on a public address and answers without a password",
            "bind Redis to a private network, set requirepass and put the password in REDIS_URL",
        )
    if parts.scheme != "rediss":
        return warned(
            "redis",
            f"Redis at {where} is on a public address; its password and data travel unencrypted",
            "move Redis to a private network, or use TLS with a rediss:// URL",
        )
    return passed("redis", f"Redis at {where} answers, requires a password and speaks TLS")
