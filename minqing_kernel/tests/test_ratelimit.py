"""The kernel's rate limiter (reports per user, sign-ins per client, partner reports):
a burst, then a steady rate. The clock is
injected, so nothing here sleeps."""
from __future__ import annotations

import pytest

from gateway.ratelimit import too_many_reports
from minqing_kernel.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock) -> RateLimiter:
    return RateLimiter(per_minute=30, burst=10, clock=clock)


def test_a_burst_of_ten_goes_through_and_the_eleventh_waits(limiter):
    assert [limiter.take("resident-zhang") for _ in range(10)] == [0.0] * 10
    assert limiter.take("resident-zhang") == pytest.approx(2.0)  # 30/min: one every 2 s


def test_after_the_burst_one_report_per_interval_goes_through(limiter, clock):
    # Given a user who used her whole burst
    for _ in range(10):
        limiter.take("resident-zhang")
    # When 2 s pass (30 a minute), one more goes through, and not two
    clock.advance(2.0)
    assert limiter.take("resident-zhang") == 0.0
    assert limiter.take("resident-zhang") > 0


def test_the_wait_shrinks_as_time_passes(limiter, clock):
    for _ in range(10):
        limiter.take("resident-zhang")
    clock.advance(1.5)
    assert limiter.take("resident-zhang") == pytest.approx(0.5)


def test_a_refused_attempt_does_not_use_up_a_token(limiter, clock):
    for _ in range(10):
        limiter.take("resident-zhang")
    for _ in range(5):
        assert limiter.take("resident-zhang") > 0
    clock.advance(2.0)
    assert limiter.take("resident-zhang") == 0.0


def test_the_bucket_refills_to_the_burst_and_no_further(limiter, clock):
    # Given a user idle for an hour
    limiter.take("resident-zhang")
    clock.advance(3600)
    # Then she has a burst of ten again, not 1800
    assert [limiter.take("resident-zhang") for _ in range(10)] == [0.0] * 10
    assert limiter.take("resident-zhang") > 0


def test_each_user_has_a_bucket_of_her_own(limiter):
    for _ in range(10):
        limiter.take("resident-zhang")
    assert limiter.take("resident-zhang") > 0
    assert limiter.take("resident-li") == 0.0


def test_the_rate_and_burst_are_configurable(clock):
    limiter = RateLimiter(per_minute=6, burst=2, clock=clock)
    assert [limiter.take("u") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("u") == pytest.approx(10.0)


def test_idle_users_are_forgotten_so_memory_stays_bounded(clock):
    # Given a limiter with room for two users' buckets
    limiter = RateLimiter(per_minute=30, burst=10, clock=clock, max_keys=2)
    for user in ("a", "b", "c"):
        limiter.take(user)
    # Then the least recently used was dropped...
    assert len(limiter._buckets) == 2 and "a" not in limiter._buckets
    # ...and a bucket idle long enough to be full again is dropped as well
    clock.advance(20.0)  # 10 tokens at 0.5/s
    limiter.take("d")
    assert list(limiter._buckets) == ["d"]


def test_forgetting_a_user_never_gives_her_more_than_a_full_bucket(clock):
    limiter = RateLimiter(per_minute=30, burst=10, clock=clock, max_keys=1)
    for _ in range(10):
        limiter.take("a")
    limiter.take("b")  # evicts "a"
    # "a" comes back with a fresh bucket: never more than the burst
    assert [limiter.take("a") for _ in range(10)] == [0.0] * 10


@pytest.mark.parametrize("per_minute, burst", [(0, 10), (-1, 10), (30, 0)])
def test_a_limit_that_lets_nothing_through_is_refused(per_minute, burst):
    with pytest.raises(ValueError):
        RateLimiter(per_minute=per_minute, burst=burst)


def test_over_the_limit_is_a_429_rate_limited_problem_with_whole_seconds():
    problem = too_many_reports(1.2)
    body = problem.to_problem()
    assert (body["status"], body["type"]) == (429, "/problems/rate-limited")
    assert body["retry_after_s"] == 2
    assert "2 s" in body["detail"] and "2 秒" in body["detail_zh"]


def test_waiting_is_asked_without_using_up_a_token(limiter):
    # Given a user with one token left
    for _ in range(9):
        limiter.take("resident-zhang")
    # When the wait is asked any number of times
    assert [limiter.wait("resident-zhang") for _ in range(5)] == [0.0] * 5
    # Then the token is still there, and once taken the wait is the interval
    assert limiter.take("resident-zhang") == 0.0
    assert limiter.wait("resident-zhang") == pytest.approx(2.0)
