"""Bearer tokens: HS256 JWTs carrying the user id, roles and unit, checked on every call."""
from __future__ import annotations

import time
import uuid
from functools import lru_cache

import jwt

from minqing_kernel.errors import Forbidden, Unauthorized

ISSUER = "minqing"
AUDIENCE = "minqing-api"
ALGORITHM = "HS256"


def issue_token(user: dict, secret: str, ttl_s: int) -> str:
    now = int(time.time())
    claims = {"sub": user["id"], "name": user["display_name"], "roles": user["roles"],
              "unit": user.get("unit_id"), "iat": now, "nbf": now, "exp": now + ttl_s,
              "iss": ISSUER, "aud": AUDIENCE, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


@lru_cache(maxsize=4096)
def _verified_claims(token: str, secret: str) -> dict:
    # Only our algorithm: a token signed 'none' or with another key type is refused.
    return jwt.decode(token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                      options={"require": ["exp", "iat", "sub", "iss", "aud"]})


def actor_from(authorization: str | None, secret: str) -> dict:
    """The signed-in user as services see them: {id, roles, unit_id}."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("Sign in first: send 'Authorization: Bearer <token>' from "
                           "POST /v1/auth/token.",
                           "请先登录：在请求头中携带 POST /v1/auth/token 返回的令牌。",
                           code="token-missing")
    try:
        # A phone sends the same token with every request: its signature is checked once
        # (cached), its expiry every time.
        claims = _verified_claims(authorization[7:].strip(), secret)
        if claims["exp"] <= time.time():
            raise jwt.ExpiredSignatureError
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Your sign-in has expired; sign in again.", "登录已过期，请重新登录。",
                           code="token-expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The token is not valid; sign in again.", "令牌无效，请重新登录。",
                           code="token-invalid") from None
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("The token is not valid; sign in again.", "令牌无效，请重新登录。",
                           code="token-invalid")
    return {"id": claims["sub"], "roles": roles, "unit_id": claims.get("unit")}


def require_role(actor: dict, *roles: str) -> None:
    if not set(actor["roles"]) & set(roles):
        raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.",
                        f"此操作需要以下角色之一：{'、'.join(roles)}。", code="role-required")
