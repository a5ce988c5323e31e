"""Sign-in lockout: five wrong passwords in a row lock an account for fifteen minutes,
and a made-up username answers exactly like a real one. Unit tests: no servers."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from nameko.exceptions import deserialize, serialize

from minqing_kernel.errors import TooManyRequests
from services.identity.domain import (
    LockoutPolicy,
    SignInRecord,
    after_failed_sign_in,
    after_successful_sign_in,
    seconds_locked,
    sign_in_locked,
    wrong_credentials,
)
from services.identity.handlers import UnknownNames

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
POLICY = LockoutPolicy(max_failures=5, lock_s=900)
CJK = re.compile(r"[\u3400-\u9fff]")


def failures(n: int, record: SignInRecord = SignInRecord(), at: datetime = NOW):
    for _ in range(n):
        record = after_failed_sign_in(record, at, POLICY)
    return record


def test_the_default_policy_is_five_tries_then_fifteen_minutes():
    assert LockoutPolicy() == LockoutPolicy(max_failures=5, lock_s=15 * 60)


def test_four_wrong_passwords_in_a_row_do_not_lock_the_account():
    record = failures(4)
    assert record.failed_logins == 4
    assert seconds_locked(record, NOW) == 0


def test_the_fifth_wrong_password_locks_the_account_for_the_lock_time():
    record = failures(5)
    assert record.locked_until == NOW + timedelta(seconds=900)
    assert seconds_locked(record, NOW) == 900


def test_a_locked_account_says_how_long_it_stays_locked_rounded_up():
    record = SignInRecord(0, NOW + timedelta(seconds=61, milliseconds=1))
    assert seconds_locked(record, NOW) == 62


def test_the_lock_ends_when_its_time_is_up():
    record = failures(5)
    assert seconds_locked(record, NOW + timedelta(seconds=899)) == 1
    assert seconds_locked(record, NOW + timedelta(seconds=900)) == 0


def test_after_the_lock_the_account_has_five_fresh_tries():
    # Given an account whose lock has just ended
    later = NOW + timedelta(seconds=901)
    record = failures(5)
    # When four more wrong passwords come in
    record = failures(4, record, later)
    # Then it is still open; the fifth locks it again
    assert seconds_locked(record, later) == 0
    assert seconds_locked(failures(1, record, later), later) == 900


def test_a_successful_sign_in_resets_the_count():
    record = failures(4)
    assert after_successful_sign_in() == SignInRecord(0, None)
    assert seconds_locked(failures(4, after_successful_sign_in()), NOW) == 0
    assert record.failed_logins == 4


def test_the_limit_comes_from_the_policy():
    strict = LockoutPolicy(max_failures=2, lock_s=60)
    record = after_failed_sign_in(SignInRecord(), NOW, strict)
    assert seconds_locked(record, NOW) == 0
    assert seconds_locked(after_failed_sign_in(record, NOW, strict), NOW) == 60


def test_a_locked_sign_in_is_a_429_login_locked_problem_with_the_wait():
    body = sign_in_locked(900).to_problem()
    assert body["status"] == 429
    assert body["type"] == "/problems/login-locked"
    assert body["retry_after_s"] == 900
    assert "15 min" in body["detail"]
    assert CJK.search(body["detail_zh"]) and "15" in body["detail_zh"]


def test_the_locked_problem_crosses_rpc_with_its_wait():
    # Given the problem identity raises, serialised as nameko sends it
    sent = serialize(sign_in_locked(42))
    # When the gateway deserialises it
    received = deserialize(sent)
    # Then it is the same problem, wait included
    assert isinstance(received, TooManyRequests)
    assert received.code == "login-locked"
    assert received.retry_after_s == 42
    assert received.to_problem() == sign_in_locked(42).to_problem()


def test_a_wrong_password_and_an_unknown_user_get_the_same_problem():
    # There is one way to say it, used for both: nobody learns who has an account.
    first, second = wrong_credentials(), wrong_credentials()
    assert first.to_problem() == second.to_problem()
    assert (first.status, first.code) == (401, "bad-credentials")


def test_made_up_names_are_counted_like_real_ones():
    strangers = UnknownNames()
    for _ in range(5):
        strangers.put("nobody", after_failed_sign_in(strangers.get("nobody"), NOW, POLICY))
    assert seconds_locked(strangers.get("nobody"), NOW) == 900
    assert strangers.get("someone-else") == SignInRecord()


def test_made_up_names_are_forgotten_least_recently_tried_first():
    # Given room for two names
    strangers = UnknownNames(capacity=2)
    strangers.put("a", SignInRecord(1))
    strangers.put("b", SignInRecord(1))
    # When "a" is tried again and a third name comes
    strangers.put("a", SignInRecord(2))
    strangers.put("c", SignInRecord(1))
    # Then "b" is the one forgotten
    assert strangers.get("b") == SignInRecord()
    assert strangers.get("a") == SignInRecord(2)
    assert strangers.get("c") == SignInRecord(1)


@pytest.mark.parametrize("wait_s, minutes", [(1, 1), (60, 1), (61, 2), (900, 15)])
def test_the_message_rounds_the_wait_up_to_whole_minutes(wait_s, minutes):
    assert f"{minutes} min" in sign_in_locked(wait_s).detail_en
