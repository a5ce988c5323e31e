"""The account state every token is checked against, and sign-in answers. Unit tests:
no servers (the changes themselves run against the real stack in
tests/e2e/test_auth_hardening.py)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from nameko.exceptions import deserialize, serialize

from minqing_kernel.errors import Forbidden, Invalid
from services.identity.domain import (
    ACTIVE,
    DEACTIVATED,
    LOCKED,
    account_disabled,
    account_status,
    checked_roles,
    token_state,
    wrong_credentials,
)

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CJK = re.compile(r"[\u3400-\u9fff]")


def row(**changes):
    base = dict(id="operator-chen", roles=["operator"], unit_id="command-center",
                token_version=7, active=True, locked_until=None)
    return SimpleNamespace(**{**base, **changes})


def test_an_active_account_unlocked_is_active():
    assert account_status(True, None, NOW) == ACTIVE
    assert account_status(True, NOW - timedelta(seconds=1), NOW) == ACTIVE  # lock over


def test_a_lock_holds_until_its_time():
    assert account_status(True, NOW + timedelta(seconds=1), NOW) == LOCKED


def test_deactivation_wins_over_everything():
    assert account_status(False, NOW + timedelta(hours=1), NOW) == DEACTIVATED


def test_the_token_state_names_roles_unit_version_and_status():
    assert token_state(row(), NOW) == {"id": "operator-chen", "roles": ["operator"],
                                       "unit_id": "command-center", "token_version": 7,
                                       "status": ACTIVE}


@pytest.mark.parametrize("roles", [[], "admin", ["king"], ["admin", 1], None])
def test_roles_must_be_known_names(roles):
    with pytest.raises(Invalid) as raised:
        checked_roles(roles)
    assert raised.value.code == "bad-roles"


def test_roles_are_kept_once_each_in_order():
    assert checked_roles(["operator", "admin", "operator"]) == ["admin", "operator"]


@pytest.mark.parametrize("status, code", [(LOCKED, "account-locked"),
                                          (DEACTIVATED, "account-deactivated")])
def test_a_disabled_account_is_a_403_that_says_whom_to_contact(status, code):
    problem = account_disabled(status)
    assert isinstance(problem, Forbidden) and problem.code == code
    assert "command center" in problem.detail_en and CJK.search(problem.detail_zh)
    received = deserialize(serialize(problem))
    assert received.to_problem() == problem.to_problem()


def test_a_wrong_password_and_an_unknown_user_get_the_same_problem():
    # There is one way to say it, used for both: nobody learns who has an account.
    first, second = wrong_credentials(), wrong_credentials()
    assert first.to_problem() == second.to_problem()
    assert (first.status, first.code) == (401, "bad-credentials")
