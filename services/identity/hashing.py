"""Password checks, bounded: each argon2 verification takes 64 MiB and a core for a while
(the library's RFC 9106 low-memory profile), so a flood of sign-ins must queue here,
never run all at once. At most HASH_CONCURRENCY run together, off the hub; a check that
cannot start within HASH_WAIT_S is refused as 503 `sign-in-busy` (counted), which the
client may retry, instead of piling up memory. The gateway's per-client limits
(gateway/signin.py) keep one client from filling this queue on its own."""
from __future__ import annotations

import logging
from collections.abc import Callable

from eventlet import tpool
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge

from minqing_kernel.errors import Unavailable
from services.identity import domain

log = logging.getLogger(__name__)

HASHES_REFUSED = Counter("minqing_password_checks_refused_total",
                         "Password checks refused because too many were already waiting")
HASHES_RUNNING = Gauge("minqing_password_checks_running",
                       "Password checks (argon2) running now")


def sign_in_busy() -> Unavailable:
    return Unavailable.of("identity.sign-in-busy", code="sign-in-busy")


class PasswordChecks(DependencyProvider):
    """`verify(password_hash, password) -> bool`, at most HASH_CONCURRENCY at a time."""

    def setup(self) -> None:
        config = self.container.config
        self.slots = Semaphore(int(config.get("HASH_CONCURRENCY", 4)))
        self.wait_s = float(config.get("HASH_WAIT_S", 5))

    def get_dependency(self, worker_ctx) -> Callable[[str | None, str], bool]:
        return self.verify

    def verify(self, password_hash: str | None, password: str) -> bool:
        if not self.slots.acquire(timeout=self.wait_s):
            HASHES_REFUSED.inc()
            log.warning("a password check waited %.0f s for a slot and was refused: raise "
                        "HASH_CONCURRENCY if this host has the memory, or look for a flood "
                        "of sign-ins", self.wait_s)
            raise sign_in_busy()
        HASHES_RUNNING.inc()
        try:
            # argon2 is CPU-bound C code: run it off the hub so other requests keep moving.
            return tpool.execute(domain.password_matches, password_hash, password)
        finally:
            HASHES_RUNNING.dec()
            self.slots.release()


def hash_new_password(password: str) -> str:
    """argon2 of a new password (sign-up, reset, a staff account), off the hub like a check."""
    return tpool.execute(domain.hash_password, password)
