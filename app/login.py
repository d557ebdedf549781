"""Throttling of failed logins (--auth), per client address, with exponential back-off.

An ASGI middleware in front of gradio's POST /login: after FREE_FAILURES wrong passwords from one
address, that address waits BASE_DELAY_S, then twice as long after each further failure (at most
MAX_DELAY_S); while it waits every login from it, right or wrong, gets 429 with Retry-After and never
reaches the password check. A successful login clears the address. The address is the TCP peer's
(forwarded-for headers are not trusted: anyone can send them).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5
BASE_DELAY_S = 1.0
MAX_DELAY_S = 300.0
MAX_ADDRESSES = 10_000  # oldest forgotten first: memory stays bounded whoever knocks


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0


class LoginThrottle:
    """Failure counts and back-off per address; thread-safe; `clock` is injectable for tests."""

    def __init__(
        self,
        free_failures: int = FREE_FAILURES,
        base_delay_s: float = BASE_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.free_failures, self.base_delay_s, self.max_delay_s = free_failures, base_delay_s, max_delay_s
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> float:
        """Seconds this address must wait before its next login attempt (0: it may try now)."""
        with self._lock:
            record = self._records.get(address)
            return max(0.0, record.blocked_until - self.clock()) if record else 0.0

    def failed(self, address: str) -> float:
        """Count a failed login; return the wait it now has."""
        with self._lock:
            record = self._records.pop(address, None) or _Record()
            record.failures += 1
            extra = record.failures - self.free_failures
            if extra > 0:
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** min(extra - 1, 32))
                record.blocked_until = self.clock() + delay
            self._records[address] = record
            while len(self._records) > MAX_ADDRESSES:
                self._records.popitem(last=False)
            return max(0.0, record.blocked_until - self.clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._records.pop(address, None)


def is_login(scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/login")


class LoginThrottleMiddleware:
    """ASGI middleware: refuse logins from a waiting address, count failures (HTTP 400) and successes."""

    def __init__(self, app, throttle: LoginThrottle | None = None):
        self.app, self.throttle = app, throttle or LoginThrottle()

    async def __call__(self, scope, receive, send):
        if not is_login(scope):
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.wait_s(address)
        if wait > 0:
            await _too_many(send, wait)
            return
        status: list[int] = []

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status and status[0] == 200:
            self.throttle.succeeded(address)
        elif status and status[0] in (400, 401):
            self.throttle.failed(address)


async def _too_many(send, wait_s: float) -> None:
    seconds = math.ceil(wait_s)
    body = json.dumps({"detail": f"Too many failed logins from this address: try again in {seconds} s."}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", str(seconds).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
