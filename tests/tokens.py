"""Tokens that must be refused: not ours, not any more, or not what they claim."""
from __future__ import annotations

import base64
import json
import time
import uuid

import jwt

from gateway import auth


def claims_for(user: dict, **override) -> dict:
    """The claims the gateway would issue for `user`, with `override` applied."""
    now = int(time.time())
    claims = {"sub": user["id"], "name": user["display_name"], "roles": user["roles"],
              "unit": user.get("unit_id"), "iat": now, "nbf": now, "exp": now + 3600,
              "iss": auth.ISSUER, "aud": auth.AUDIENCE, "jti": str(uuid.uuid4())}
    claims.update(override)
    return claims


def expired(user: dict, secret: str) -> str:
    past = int(time.time()) - 7200
    return jwt.encode(claims_for(user, iat=past, nbf=past, exp=past + 60), secret, "HS256")


def forged(user: dict, secret: str) -> str:
    return jwt.encode(claims_for(user), "not-the-" + secret, "HS256")


def unsigned(user: dict, secret: str) -> str:
    return jwt.encode(claims_for(user), None, algorithm="none")


def hs512_right_secret(user: dict, secret: str) -> str:
    return jwt.encode(claims_for(user), secret, "HS512")


def wrong_audience(user: dict, secret: str) -> str:
    return jwt.encode(claims_for(user, aud="someone-elses-api"), secret, "HS256")


def roles_edited_after_signing(user: dict, secret: str) -> str:
    """A resident's genuine token with its payload swapped for one that says `user`."""
    resident = {**user, "id": "resident-wang", "roles": ["resident"]}
    header, _, signature = jwt.encode(claims_for(resident), secret, "HS256").split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims_for(user)).encode())
    return ".".join([header, payload.rstrip(b"=").decode(), signature])
