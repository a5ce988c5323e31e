"""How often a client may try to sign in: the gateway's, before identity hashes anything.

Issue #10, finding 9: five wrong passwords used to lock an account for everyone, so any
stranger who knew a username could lock its owner out, and each anonymous attempt cost
identity a 64 MiB argon2 hash with no limit per client. Now, as the usual advice goes
(OWASP's authentication cheat sheet, NIST SP 800-63B 5.2.2), failures are throttled per
(username, client), never per account alone: a stranger's wrong guesses slow down that
stranger, and the resident signs in from her own phone as usual. Every attempt also
takes from a per-client bucket, checked before the RPC, so a flood is refused here
without a hash; identity bounds the hashes that do run (services/identity/hashing.py).

A client is its address (minqing_kernel.web.client_address, TRUSTED_PROXIES deciding
how much of X-Forwarded-For to believe). Limits are per gateway process, like every
limit from minqing_kernel.ratelimit. A made-up username is throttled exactly like a real
one: nothing here knows which exist.
"""
from __future__ import annotations

import logging
import math

from nameko.extensions import DependencyProvider
from prometheus_client import Counter

from gateway.ratelimit import too_many
from minqing_kernel.errors import TooManyRequests
from minqing_kernel.ratelimit import RateLimiter

log = logging.getLogger(__name__)

SIGNINS_THROTTLED = Counter("minqing_signins_throttled_total",
                            "Sign-in attempts refused before any password was checked, by "
                            "what was over its limit (client, or username from that client)",
                            ["scope"])


def too_many_attempts_from_client(wait_s: float) -> TooManyRequests:
    return too_many("sign-ins", wait_s, code="sign-in-throttled")


def too_many_failures_here(wait_s: float) -> TooManyRequests:
    # It names this device and this username, not the account: the account is not locked,
    # and its owner signing in elsewhere is not affected.
    seconds = max(1, math.ceil(wait_s))
    minutes = max(1, math.ceil(seconds / 60))
    return TooManyRequests.of("gateway.sign-in-throttled", minutes=minutes,
                              code="sign-in-throttled", retry_after_s=seconds)


class SignInThrottle:
    """`attempts`: every attempt per client; `failures`: wrong passwords per
    (client, username), checked before and counted after."""

    def __init__(self, attempts: RateLimiter, failures: RateLimiter):
        self.attempts, self.failures = attempts, failures

    @staticmethod
    def _pair(client: str, username) -> str:
        return f"{client}\n{username[:64] if isinstance(username, str) else ''}"

    def before_attempt(self, client: str, username) -> None:
        """Raise the 429 if this attempt must not reach identity."""
        wait = self.failures.wait(self._pair(client, username))
        if wait:
            SIGNINS_THROTTLED.labels("username-from-client").inc()
            raise too_many_failures_here(wait)
        wait = self.attempts.take(client)
        if wait:
            SIGNINS_THROTTLED.labels("client").inc()
            log.warning("sign-in attempts from %s throttled (over LOGIN_CLIENT_BURST)",
                        client, extra={"client": client})
            raise too_many_attempts_from_client(wait)

    def failed(self, client: str, username) -> None:
        self.failures.take(self._pair(client, username))

    def succeeded(self, client: str, username) -> None:
        self.failures.forget(self._pair(client, username))


class SignInLimits(DependencyProvider):
    """The gateway's SignInThrottle, one per process, from gateway/config.yaml:
    LOGIN_CLIENT_BURST attempts per client at once, then LOGIN_CLIENT_RATE_PER_MIN;
    LOGIN_MAX_FAILURES wrong passwords per (client, username), refilled over
    LOGIN_FAILURE_WINDOW_S."""

    def setup(self) -> None:
        config = self.container.config
        max_failures = int(config.get("LOGIN_MAX_FAILURES", 5))
        window_s = float(config.get("LOGIN_FAILURE_WINDOW_S", 900))
        self.throttle = SignInThrottle(
            RateLimiter(float(config.get("LOGIN_CLIENT_RATE_PER_MIN", 10)),
                        int(config.get("LOGIN_CLIENT_BURST", 20))),
            RateLimiter(max_failures * 60.0 / window_s, max_failures))

    def get_dependency(self, worker_ctx) -> SignInThrottle:
        return self.throttle
