"""Password checks are bounded: at most HASH_CONCURRENCY argon2 hashes (64 MiB each) run
at once; one that cannot start in time is refused, counted, never queued without end."""
from __future__ import annotations

import eventlet
import pytest
from eventlet.semaphore import Semaphore

from minqing_kernel.errors import Unavailable
from services.identity import domain, hashing
from services.identity.hashing import HASHES_REFUSED, PasswordChecks

HASH = domain.hash_password("minqing-demo")


def checks(concurrency: int, wait_s: float) -> PasswordChecks:
    provider = PasswordChecks()
    provider.slots, provider.wait_s = Semaphore(concurrency), wait_s
    return provider


def test_a_check_with_a_free_slot_verifies_the_password():
    provider = checks(1, 1.0)
    assert provider.verify(HASH, "minqing-demo") is True
    assert provider.verify(HASH, "wrong") is False


def test_with_every_slot_taken_a_check_is_refused_as_busy_and_counted():
    # Given the only slot held by a check in progress
    provider = checks(1, 0.05)
    provider.slots.acquire()
    refused = HASHES_REFUSED._value.get()
    # When another check comes, it waits its time, then is refused without hashing
    with pytest.raises(Unavailable) as raised:
        provider.verify(HASH, "minqing-demo")
    assert raised.value.code == "sign-in-busy"
    assert HASHES_REFUSED._value.get() == refused + 1


def test_no_more_than_the_concurrency_run_at_once(monkeypatch):
    # Given two slots and six sign-ins at once
    provider = checks(2, 30.0)
    running, most = [0], [0]
    real = domain.password_matches

    def slow(password_hash, password):
        running[0] += 1
        most[0] = max(most[0], running[0])
        eventlet.sleep(0.05)
        running[0] -= 1
        return real(password_hash, password)
    # (tpool would run them in threads; counted on the hub here, the bound is the same)
    monkeypatch.setattr(hashing.tpool, "execute", lambda fn, *a: slow(*a))
    # When they all run
    pool = eventlet.GreenPool()
    results = list(pool.imap(lambda _: provider.verify(HASH, "minqing-demo"), range(6)))
    # Then all are answered, never more than two at a time
    assert results == [True] * 6 and most[0] == 2
