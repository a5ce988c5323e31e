"""Passwords are stored as argon2id hashes; phone numbers are shown masked."""
from __future__ import annotations

import pytest

from services.identity.domain import hash_password, mask_phone, password_matches


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("minqing-demo")


def test_a_password_is_stored_as_an_argon2id_hash(stored):
    assert stored.startswith("$argon2id$")
    assert "minqing-demo" not in stored


def test_the_same_password_hashes_differently_each_time(stored):
    assert hash_password("minqing-demo") != stored


def test_the_right_password_matches(stored):
    assert password_matches(stored, "minqing-demo")


def test_a_wrong_password_does_not_match(stored):
    assert not password_matches(stored, "minqing-demo ")


def test_an_unknown_user_matches_no_password():
    assert not password_matches(None, "minqing-demo")
    assert not password_matches(None, "no such user")


def test_a_corrupt_hash_matches_no_password():
    assert not password_matches("not-a-hash", "minqing-demo")


def test_a_phone_number_is_masked_in_the_middle():
    assert mask_phone("13800000001") == "138****0001"


@pytest.mark.parametrize("phone", [None, "", "110"])
def test_missing_or_short_numbers_are_left_as_they_are(phone):
    assert mask_phone(phone) == phone
