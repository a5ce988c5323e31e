"""The rules of one-time SMS codes (unit tests, no servers; the journey through the
gateway is tests/e2e/test_accounts.py)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from minqing_kernel.errors import Invalid
from services.identity import codes

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NO_LATIN = re.compile(r"[A-Za-z]")


def live_code(code: str = "123456", attempts: int = 0):
    return SimpleNamespace(id="c1", code_hash=codes.code_hash("c1", code), attempts=attempts)


def test_a_code_is_six_digits():
    assert all(codes.CODE.match(codes.new_code()) for _ in range(200))


def test_the_right_code_is_accepted():
    assert codes.check(live_code(), "123456", NOW) == codes.OK


def test_a_wrong_code_leaves_tries_until_the_fifth_burns_the_code():
    results = [codes.check(live_code(attempts=n), "000000", NOW) for n in range(5)]
    assert results == [codes.WRONG] * 4 + [codes.BURNED]


def test_the_hash_depends_on_the_row_so_equal_codes_do_not_look_equal():
    assert codes.code_hash("a", "123456") != codes.code_hash("b", "123456")


def test_a_number_may_be_sent_a_code_once_a_minute():
    assert codes.resend_wait(None, NOW) == 0
    assert codes.resend_wait(NOW - timedelta(seconds=10), NOW) == 50
    assert codes.resend_wait(NOW - timedelta(seconds=61), NOW) == 0


@pytest.mark.parametrize("phone", ["1390000000", "23900000000", "139000000001", "1390000000a",
                                   None, 13900000000])
def test_only_mainland_mobile_numbers_are_taken(phone):
    with pytest.raises(Invalid) as refused:
        codes.checked_phone(phone)
    assert refused.value.code == "bad-phone"


def test_a_password_has_at_least_eight_characters():
    with pytest.raises(Invalid):
        codes.checked_password("short")
    assert codes.checked_password("long enough") == "long enough"


@pytest.mark.parametrize("problem", [
    codes.code_refused(), codes.code_refused(3), codes.resend_too_soon(42),
])
def test_code_problems_speak_chinese_without_latin_words(problem):
    assert not NO_LATIN.search(problem.detail_zh), problem.detail_zh
    assert problem.code.startswith("sms-")
