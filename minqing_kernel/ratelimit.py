"""Rate limiting, the one way: a token bucket per key (a user, a client address, a
partner), in this process. The gateway limits reports and sign-ins with it, intake the
reports partners send over RabbitMQ.

Per instance on purpose: with N replicas a key gets up to N times the rate. That is good
enough for what it is for, a runaway phone (a retry loop, a stuck button), a script
flooding the command center from one account, a password sprayer or a partner's
runaway publisher; it costs nothing and cannot fail. A limit shared exactly across
replicas would need shared state, Redis or a PostgreSQL table, and a round trip on every
request.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from nameko.extensions import DependencyProvider


class RateLimiter:
    """`burst` submissions at once, then `per_minute` a minute, for each key.

    A bucket holds up to `burst` tokens and refills at `per_minute / 60` a second; each
    submission takes one. `clock` is injectable so the tests need no sleeping.
    """

    def __init__(self, per_minute: float, burst: int,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")
        self.rate_per_s = per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens, when they were counted), least recently used first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 if there was one, else the seconds until there is."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate_per_s)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate_per_s
            self._buckets[key] = (tokens, now)
            self._forget_idle(now)
            return wait

    def wait(self, key: str) -> float:
        """What `take` would answer, without taking: for limits that count only some
        outcomes (a failed sign-in), checked before the attempt and taken after it."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate_per_s)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s

    def forget(self, key: str) -> None:
        """Give `key` a full bucket again (a sign-in that succeeded clears its failures)."""
        with self._lock:
            self._buckets.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        # A bucket left alone long enough is full again, the same as no bucket: forget
        # those, and past max_keys the least recently used ones, so memory stays bounded.
        full_after = self.burst / self.rate_per_s
        while self._buckets:
            key, (_, then) = next(iter(self._buckets.items()))
            if now - then < full_after and len(self._buckets) <= self._max_keys:
                break
            del self._buckets[key]


class RateLimit(DependencyProvider):
    """A service's limiter, one per process, its rate and burst read from config:
    `RateLimit("REPORT_RATE_PER_MIN", "REPORT_BURST", 30, 10)`."""

    def __init__(self, rate_key: str, burst_key: str, per_minute: float, burst: int):
        self.rate_key, self.burst_key = rate_key, burst_key
        self.defaults = (per_minute, burst)

    def setup(self) -> None:
        config = self.container.config
        self.limiter = RateLimiter(float(config.get(self.rate_key, self.defaults[0])),
                                   int(config.get(self.burst_key, self.defaults[1])))

    def get_dependency(self, worker_ctx) -> RateLimiter:
        return self.limiter
