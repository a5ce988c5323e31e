"""How fast one user may submit reports: a token bucket per user, in this process.

Per instance on purpose: with N gateway replicas a user gets up to N times the rate.
That is good enough for what it is for, a runaway phone (a retry loop, a stuck button)
or a script flooding the command center from one account; it costs nothing and cannot
fail. A limit shared exactly across replicas would need shared state, Redis or a
PostgreSQL table, and a round trip on every submission.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from nameko.extensions import DependencyProvider

from minqing_kernel.errors import TooManyRequests


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

    def _forget_idle(self, now: float) -> None:
        # A bucket left alone long enough is full again, the same as no bucket: forget
        # those, and past max_keys the least recently used ones, so memory stays bounded.
        full_after = self.burst / self.rate_per_s
        while self._buckets:
            key, (_, then) = next(iter(self._buckets.items()))
            if now - then < full_after and len(self._buckets) <= self._max_keys:
                break
            del self._buckets[key]


def too_many_reports(wait_s: float) -> TooManyRequests:
    seconds = max(1, math.ceil(wait_s))
    return TooManyRequests(
        f"Too many reports in a short time; try again in {seconds} s.",
        f"提交爆料过于频繁，请 {seconds} 秒后再试。",
        code="rate-limited", retry_after_s=seconds)


class ReportRateLimit(DependencyProvider):
    """The gateway's report limiter, one per process, from REPORT_RATE_PER_MIN and
    REPORT_BURST (see gateway/config.yaml)."""

    def setup(self) -> None:
        config = self.container.config
        self.limiter = RateLimiter(float(config.get("REPORT_RATE_PER_MIN", 30)),
                                   int(config.get("REPORT_BURST", 10)))

    def get_dependency(self, worker_ctx) -> RateLimiter:
        return self.limiter


def too_many_uploads(wait_s: float) -> TooManyRequests:
    seconds = max(1, math.ceil(wait_s))
    return TooManyRequests(
        f"Too many uploads in a short time; try again in {seconds} s.",
        f"上传过于频繁，请 {seconds} 秒后再试。",
        code="rate-limited", retry_after_s=seconds)


class UploadRateLimit(DependencyProvider):
    """Upload tickets per user, per process, from UPLOAD_RATE_PER_MIN and UPLOAD_BURST.

    Its own bucket, apart from reports': a report carries up to 9 attachments, so a
    resident photographing one problem needs a burst of uploads, not of reports; and each
    ticket costs a row and a signature, which an unthrottled script could pile up."""

    def setup(self) -> None:
        config = self.container.config
        self.limiter = RateLimiter(float(config.get("UPLOAD_RATE_PER_MIN", 60)),
                                   int(config.get("UPLOAD_BURST", 20)))

    def get_dependency(self, worker_ctx) -> RateLimiter:
        return self.limiter
