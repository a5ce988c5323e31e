"""Sign-in throttling (issue #10, finding 9): failures slow down the client that makes
them, per username, and never lock an account for everyone; every attempt takes from
its client's bucket before any password is checked. The clock is injected."""
from __future__ import annotations

import re

import pytest

from gateway.signin import SignInThrottle
from minqing_kernel.errors import TooManyRequests
from minqing_kernel.ratelimit import RateLimiter
from minqing_kernel.web import client_address

CJK = re.compile(r"[\u3400-\u9fff]")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def throttle(clock):
    # 20 attempts per client at once, then 10 a minute; 5 failures per (client, name)
    # refilled over 15 minutes
    return SignInThrottle(RateLimiter(10, 20, clock=clock), RateLimiter(5 * 60 / 900, 5,
                                                                         clock=clock))


def fail(throttle, client, username, times):
    for _ in range(times):
        throttle.before_attempt(client, username)
        throttle.failed(client, username)


def test_a_strangers_failures_do_not_stop_the_owner_signing_in_from_elsewhere(throttle):
    # Given a stranger who got five wrong passwords for zhang's username
    fail(throttle, "203.0.113.9", "resident-zhang", 5)
    # When zhang signs in from her phone's address
    # Then nothing stops her
    throttle.before_attempt("198.51.100.7", "resident-zhang")


def test_the_sixth_failure_from_the_same_client_is_throttled_without_blaming_the_account(
        throttle):
    fail(throttle, "203.0.113.9", "resident-zhang", 5)
    with pytest.raises(TooManyRequests) as raised:
        throttle.before_attempt("203.0.113.9", "resident-zhang")
    problem = raised.value.to_problem()
    assert problem["type"] == "/problems/sign-in-throttled"
    assert 0 < problem["retry_after_s"] <= 181  # one failure back after 900/5 s
    assert "locked" not in problem["detail"] and "锁定" not in problem["detail_zh"]
    assert "this device" in problem["detail"] and CJK.search(problem["detail_zh"])


def test_a_successful_sign_in_clears_that_clients_failures(throttle):
    fail(throttle, "203.0.113.9", "resident-zhang", 4)
    throttle.succeeded("203.0.113.9", "resident-zhang")
    fail(throttle, "203.0.113.9", "resident-zhang", 5)  # five fresh ones, no refusal


def test_a_client_over_its_attempt_burst_is_throttled_whatever_the_username(throttle):
    # Given a client spraying twenty different usernames
    for n in range(20):
        throttle.before_attempt("203.0.113.9", f"user-{n}")
    # Then the 21st attempt is refused before any password check, and others are not
    with pytest.raises(TooManyRequests) as raised:
        throttle.before_attempt("203.0.113.9", "user-21")
    assert raised.value.code == "sign-in-throttled"
    assert "your network" in raised.value.detail_en
    throttle.before_attempt("198.51.100.7", "user-21")


def test_failures_are_forgiven_at_the_window_rate(throttle, clock):
    fail(throttle, "203.0.113.9", "resident-zhang", 5)
    clock.now += 181  # 5 per 900 s: one back every 180 s
    fail(throttle, "203.0.113.9", "resident-zhang", 1)
    with pytest.raises(TooManyRequests):
        throttle.before_attempt("203.0.113.9", "resident-zhang")


@pytest.mark.parametrize("username", [None, 42, {"a": 1}, "x" * 500])
def test_any_username_value_is_a_key(throttle, username):
    fail(throttle, "203.0.113.9", username, 5)
    with pytest.raises(TooManyRequests):
        throttle.before_attempt("203.0.113.9", username)


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "1.1.1.1", "10.0.0.5"),                    # no proxy: the header is anyone's
    (1, "", "10.0.0.5"),
    (1, "1.1.1.1", "1.1.1.1"),
    (1, "6.6.6.6, 1.1.1.1", "1.1.1.1"),            # a client-made left part is ignored
    (2, "6.6.6.6, 1.1.1.1, 10.0.0.9", "1.1.1.1"),
    (3, "1.1.1.1", "1.1.1.1"),
])
def test_the_client_is_what_our_own_proxies_saw(proxies, forwarded, expected):
    environ = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_address(environ, proxies) == expected
