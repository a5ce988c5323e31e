"""Issue #19: a signed-in person changes their password with the current one, and every
other session is signed out through the one token-version mechanism; a reset by SMS code
signs out every session too. Against the real stack, through the gateway."""
from __future__ import annotations

import pytest
import requests

from tests.e2e.test_accounts import (
    a_minute_later,
    ask_code,
    bearer,
    code_for,
    new_phone,
    post,
    signed_up,
)

pytestmark = pytest.mark.integration


def me(stack, token: str) -> int:
    return requests.get(f"{stack.gateway}/v1/me", headers=bearer(token), timeout=30).status_code


def sign_in(stack, phone: str, password: str) -> requests.Response:
    return post(stack, "/v1/auth/token", {"username": phone, "password": password})


def test_a_password_change_signs_out_the_other_sessions_and_keeps_this_one(stack):
    # Given a resident signed in on two phones
    phone = new_phone()
    first = signed_up(stack, phone)["access_token"]
    second = sign_in(stack, phone, "my-first-pass").json()["access_token"]
    # When the second changes the password with the current one
    r = post(stack, "/v1/me/password", {"current_password": "my-first-pass",
                                        "new_password": "my-changed-pass"}, token=second)
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    # then both tokens issued before are refused, the fresh one works
    assert (me(stack, first), me(stack, second), me(stack, fresh)) == (401, 401, 200)
    # and only the new password signs in
    assert sign_in(stack, phone, "my-first-pass").status_code == 401
    assert sign_in(stack, phone, "my-changed-pass").status_code == 200
    # and the change is in the account's audit, by its owner
    changes = requests.get(f"{stack.gateway}/v1/me/data", headers=bearer(fresh),
                           timeout=30).json()["changes"]
    assert changes[-1]["what"] == "password-changed"


def test_a_wrong_current_password_changes_nothing(stack):
    phone = new_phone()
    token = signed_up(stack, phone)["access_token"]
    # When the current password given is not the account's
    r = post(stack, "/v1/me/password", {"current_password": "not-my-pass",
                                        "new_password": "my-changed-pass"}, token=token)
    # then it is refused in both languages, the session goes on, the password stays
    assert (r.status_code, r.json()["type"]) == (403, "/problems/current-password-wrong")
    assert r.json()["detail_zh"] == "当前密码不正确。"
    assert me(stack, token) == 200
    assert sign_in(stack, phone, "my-first-pass").status_code == 200


def test_wrong_current_passwords_throttle_the_change_and_not_signing_in(stack):
    phone = new_phone()
    token = signed_up(stack, phone)["access_token"]
    here = {"X-Forwarded-For": "10.251.0.1"}
    tries = [requests.post(f"{stack.gateway}/v1/me/password", timeout=30,
                           headers={**here, **bearer(token)},
                           json={"current_password": "guess", "new_password": "whatever-1"}
                           ).status_code for _ in range(6)]
    assert tries == [403] * 5 + [429]
    # The owner still signs in from the same client with the password
    r = requests.post(f"{stack.gateway}/v1/auth/token", headers=here, timeout=30,
                      json={"username": phone, "password": "my-first-pass"})
    assert r.status_code == 200, r.text


def test_a_reset_by_code_signs_out_every_session(stack):
    # Given a resident signed in on two phones
    phone = new_phone()
    first = signed_up(stack, phone)["access_token"]
    second = sign_in(stack, phone, "my-first-pass").json()["access_token"]
    # When the password is reset with a code
    a_minute_later(stack, phone)
    assert ask_code(stack, phone, "reset-password").status_code == 202
    reset = post(stack, "/v1/auth/password-reset",
                 {"phone": phone, "code": code_for(stack, phone, after=1),
                  "password": "my-reset-pass"})
    assert reset.status_code == 200, reset.text
    # then neither earlier session works, the reset's own token does
    assert (me(stack, first), me(stack, second),
            me(stack, reset.json()["access_token"])) == (401, 401, 200)
