"""Bearer tokens: what the gateway accepts as a signed-in user, and what it refuses."""
from __future__ import annotations

import time

import jwt
import pytest

from gateway.auth import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    AccountStates,
    actor_from,
    claims_from,
    issue_token,
    require_role,
)
from minqing_kernel.errors import Forbidden, Unauthorized

SECRET = "test-secret-that-is-long-enough-for-hs256"
USER = {"id": "u-1", "display_name": "孙丽", "roles": ["handler"], "unit_id": "comm-jinjiang",
        "token_version": 3}
STATE = {"id": "u-1", "roles": ["handler"], "unit_id": "comm-jinjiang", "token_version": 3,
         "status": "active"}


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"sub": "u-1", "name": "孙丽", "roles": ["handler"], "unit": "comm-jinjiang",
            "iat": now, "nbf": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE,
            "jti": "j-1", "ver": 3}
    base.update(changes)
    return base


def bearer(token: str) -> str:
    return f"Bearer {token}"


def refused_code(authorization: str | None, state: dict | None = STATE) -> str:
    with pytest.raises(Unauthorized) as raised:
        actor_from(claims_from(authorization, SECRET), state)
    assert raised.value.status == 401
    return raised.value.code


def test_an_issued_token_gives_back_the_actor():
    token = issue_token(USER, SECRET, ttl_s=600)
    assert actor_from(claims_from(bearer(token), SECRET), STATE) == {
        "id": "u-1", "roles": ["handler"], "unit_id": "comm-jinjiang"}


def test_a_user_without_a_unit_has_unit_none():
    token = issue_token(USER, SECRET, ttl_s=600)
    actor = actor_from(claims_from(bearer(token), SECRET), {**STATE, "unit_id": None})
    assert actor["unit_id"] is None


def test_roles_and_unit_come_from_the_account_now_not_from_the_token():
    # Given a handler's token, and an account since moved and made a resident only
    # (without a version bump, as a cache would show it between the two)
    token = issue_token(USER, SECRET, ttl_s=600)
    now = {**STATE, "roles": ["resident"], "unit_id": None}
    # Then the actor is what the account is now
    assert actor_from(claims_from(bearer(token), SECRET), now) == {
        "id": "u-1", "roles": ["resident"], "unit_id": None}


@pytest.mark.parametrize("state", [
    None,                                      # the account was deleted
    {**STATE, "token_version": 4},             # roles/unit changed, or signed out
    {**STATE, "status": "deactivated"},
    {**STATE, "status": "locked"},
], ids=["deleted", "version-bumped", "deactivated", "locked"])
def test_a_token_of_an_account_that_changed_since_is_revoked(state):
    token = issue_token(USER, SECRET, ttl_s=600)
    assert refused_code(bearer(token), state) == "token-revoked"


def test_a_token_without_a_version_is_invalid():
    token = jwt.encode({k: v for k, v in claims().items() if k != "ver"}, SECRET,
                       algorithm=ALGORITHM)
    assert refused_code(bearer(token)) == "token-invalid"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_account_state_is_asked_once_per_cache_time():
    # Given a cache of 5 s and an identity that counts the questions
    clock, asked = Clock(), []
    states = AccountStates(ttl_s=5, clock=clock)

    def fetch(user_id):
        asked.append(user_id)
        return {**STATE, "token_version": len(asked)}
    # When the same user calls three times within 5 s, then once after
    first = [states.get("u-1", fetch)["token_version"] for _ in range(3)]
    clock.now += 5.0
    later = states.get("u-1", fetch)["token_version"]
    # Then identity was asked twice, and the answer after 5 s is the new one
    assert first == [1, 1, 1] and later == 2 and asked == ["u-1", "u-1"]


def test_a_deleted_account_is_remembered_as_none_for_the_cache_time():
    clock, asked = Clock(), []
    states = AccountStates(ttl_s=5, clock=clock)
    for _ in range(3):
        assert states.get("gone", lambda u: asked.append(u)) is None
    assert asked == ["gone"]


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "bearer abc"])
def test_no_bearer_token_is_token_missing(authorization):
    assert refused_code(authorization) == "token-missing"


def test_an_expired_token_is_token_expired():
    token = jwt.encode(claims(iat=1_000, nbf=1_000, exp=2_000), SECRET, algorithm=ALGORITHM)
    assert refused_code(bearer(token)) == "token-expired"


def test_a_token_signed_with_another_secret_is_invalid():
    token = issue_token(USER, "another-secret-that-is-long-enough-too", ttl_s=600)
    assert refused_code(bearer(token)) == "token-invalid"


def test_an_unsigned_token_is_invalid():
    token = jwt.encode(claims(), None, algorithm="none")
    assert refused_code(bearer(token)) == "token-invalid"


def test_a_garbled_token_is_invalid():
    assert refused_code("Bearer not.a.jwt") == "token-invalid"


@pytest.mark.parametrize("changes", [{"aud": "someone-else"}, {"iss": "someone-else"}])
def test_a_token_for_another_audience_or_from_another_issuer_is_invalid(changes):
    token = jwt.encode(claims(**changes), SECRET, algorithm=ALGORITHM)
    assert refused_code(bearer(token)) == "token-invalid"


@pytest.mark.parametrize("claim", ["exp", "sub", "iss", "aud"])
def test_a_token_without_a_required_claim_is_invalid(claim):
    token = jwt.encode({k: v for k, v in claims().items() if k != claim}, SECRET,
                       algorithm=ALGORITHM)
    assert refused_code(bearer(token)) == "token-invalid"


@pytest.mark.parametrize("roles", ["admin", None, {"admin": True}, ["admin", 1], ["admin"]])
def test_whatever_roles_a_token_claims_the_accounts_roles_are_used(roles):
    token = jwt.encode(claims(roles=roles), SECRET, algorithm=ALGORITHM)
    assert actor_from(claims_from(bearer(token), SECRET), STATE)["roles"] == ["handler"]


def test_an_actor_with_one_of_the_roles_passes():
    assert require_role({"id": "u-1", "roles": ["handler", "leader"]}, "leader", "admin") is None


def test_an_actor_without_any_of_the_roles_is_forbidden():
    with pytest.raises(Forbidden) as raised:
        require_role({"id": "u-1", "roles": ["resident"]}, "operator", "admin")
    assert raised.value.code == "role-required"
    assert raised.value.status == 403
