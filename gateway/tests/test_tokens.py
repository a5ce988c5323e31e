"""Bearer tokens: what the gateway accepts as a signed-in user, and what it refuses."""
from __future__ import annotations

import time

import jwt
import pytest

from gateway.auth import ALGORITHM, AUDIENCE, ISSUER, actor_from, issue_token, require_role
from minqing_kernel.errors import Forbidden, Unauthorized

SECRET = "test-secret-that-is-long-enough-for-hs256"
USER = {"id": "u-1", "display_name": "孙丽", "roles": ["handler"], "unit_id": "comm-jinjiang"}


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"sub": "u-1", "name": "孙丽", "roles": ["handler"], "unit": "comm-jinjiang",
            "iat": now, "nbf": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE,
            "jti": "j-1"}
    base.update(changes)
    return base


def bearer(token: str) -> str:
    return f"Bearer {token}"


def refused_code(authorization: str | None) -> str:
    with pytest.raises(Unauthorized) as raised:
        actor_from(authorization, SECRET)
    assert raised.value.status == 401
    return raised.value.code


def test_an_issued_token_gives_back_the_actor():
    token = issue_token(USER, SECRET, ttl_s=600)
    assert actor_from(bearer(token), SECRET) == {
        "id": "u-1", "roles": ["handler"], "unit_id": "comm-jinjiang"}


def test_a_user_without_a_unit_has_unit_none():
    token = issue_token({**USER, "roles": ["resident"], "unit_id": None}, SECRET, ttl_s=600)
    assert actor_from(bearer(token), SECRET)["unit_id"] is None


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


@pytest.mark.parametrize("roles", ["admin", None, {"admin": True}, ["admin", 1]])
def test_roles_that_are_not_a_list_of_names_are_invalid(roles):
    token = jwt.encode(claims(roles=roles), SECRET, algorithm=ALGORITHM)
    assert refused_code(bearer(token)) == "token-invalid"


def test_an_actor_with_one_of_the_roles_passes():
    assert require_role({"id": "u-1", "roles": ["handler", "leader"]}, "leader", "admin") is None


def test_an_actor_without_any_of_the_roles_is_forbidden():
    with pytest.raises(Forbidden) as raised:
        require_role({"id": "u-1", "roles": ["resident"]}, "operator", "admin")
    assert raised.value.code == "role-required"
    assert raised.value.status == 403
