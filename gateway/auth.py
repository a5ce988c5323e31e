"""Bearer tokens: HS256 JWTs naming the user and the account's token_version, checked on
every call against the account's current state.

Why a version check and not short-lived access tokens with refresh: a refresh scheme
still lets a demoted operator or a deactivated account act until the access token runs
out (minutes, at best), needs a refresh endpoint, refresh-token storage and rotation, and
a change in every client; and the accounts it must stop are exactly the ones a refresh
would have to look up anyway. Checking (user, version) against identity, cached per
gateway process for TOKEN_CHECK_TTL_S (default 5 s), stops them within seconds for one
RPC per active user per 5 s, and the same mechanism serves every later revocation
(role or unit changes, locks, deactivation, a password change, "sign out everywhere":
identity bumps the version). Roles and unit are taken from identity's answer, never
from the token, so a token is only a signed "I am user X, session version N".
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache

import jwt
from nameko.extensions import DependencyProvider
from prometheus_client import Counter

from minqing_kernel import messages
from minqing_kernel.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)
ISSUER = "minqing"
AUDIENCE = "minqing-api"
ALGORITHM = "HS256"

TOKENS_REFUSED = Counter("minqing_tokens_refused_total",
                         "Bearer tokens refused, by reason (missing, expired, invalid, "
                         "revoked: the account changed, was deactivated, locked or deleted)",
                         ["reason"])


def issue_token(user: dict, secret: str, ttl_s: int) -> str:
    now = int(time.time())
    # Roles and unit are in the token for the client to read; the gateway ignores them.
    claims = {"sub": user["id"], "ver": int(user["token_version"]),
              "name": user["display_name"], "roles": user["roles"],
              "unit": user.get("unit_id"), "iat": now, "nbf": now, "exp": now + ttl_s,
              "iss": ISSUER, "aud": AUDIENCE, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


@lru_cache(maxsize=4096)
def _verified_claims(token: str, secret: str) -> dict:
    # Only our algorithm: a token signed 'none' or with another key type is refused.
    return jwt.decode(token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                      options={"require": ["exp", "iat", "sub", "iss", "aud"]})


def _refused(code: str) -> Unauthorized:
    TOKENS_REFUSED.labels(code.removeprefix("token-")).inc()
    return Unauthorized.of(f"gateway.{code}", code=code)


def claims_from(authorization: str | None, secret: str) -> dict:
    """The verified claims of the bearer token: signature, issuer, audience, expiry."""
    if not authorization or not authorization.startswith("Bearer "):
        raise _refused(code="token-missing")
    try:
        # A phone sends the same token with every request: its signature is checked once
        # (cached), its expiry every time.
        claims = _verified_claims(authorization[7:].strip(), secret)
        if claims["exp"] <= time.time():
            raise jwt.ExpiredSignatureError
    except jwt.ExpiredSignatureError:
        raise _refused(code="token-expired") from None
    except jwt.InvalidTokenError:
        raise _refused(code="token-invalid") from None
    # A token from before versions (or with a forged type) is not one we issue now.
    if not isinstance(claims.get("ver"), int) or isinstance(claims.get("ver"), bool) \
            or not isinstance(claims["sub"], str):
        raise _refused(code="token-invalid")
    return claims


def actor_from(claims: dict, state: dict | None) -> dict:
    """The signed-in user as services see them, {id, roles, unit_id}, from the account's
    current state (identity's account_state), if the token still stands for it."""
    if state is None or state.get("status") != "active" \
            or state.get("token_version") != claims["ver"]:
        why = "deleted" if state is None else (
            state.get("status") if state.get("status") != "active" else "changed")
        log.info("a token of %s was refused: the account is %s since it was issued",
                 claims["sub"], why, extra={"user_id": claims["sub"]})
        raise _refused(code="token-revoked")
    return {"id": state["id"], "roles": list(state["roles"]), "unit_id": state["unit_id"]}


class AccountStates:
    """identity's account_state per user, kept `ttl_s` seconds in this process: how late
    a role change, a lock or a deactivation may reach a token already out there."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 100_000):
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._states: OrderedDict[str, tuple[float, dict | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user_id: str, fetch: Callable[[str], dict | None]) -> dict | None:
        now = self._clock()
        with self._lock:
            cached = self._states.get(user_id)
        if cached is not None and now < cached[0]:
            return cached[1]
        state = fetch(user_id)  # outside the lock: an RPC, other users need not wait
        with self._lock:
            self._states[user_id] = (now + self.ttl_s, state)
            self._states.move_to_end(user_id)
            while len(self._states) > self._max_entries:
                self._states.popitem(last=False)
        return state


    def forget(self, user_id: str) -> None:
        """Drop what this process knows of `user_id`: its next request asks identity."""
        with self._lock:
            self._states.pop(user_id, None)


class AccountStateCache(DependencyProvider):
    """The gateway's AccountStates, one per process, TOKEN_CHECK_TTL_S from config."""

    def setup(self) -> None:
        self.states = AccountStates(float(self.container.config.get("TOKEN_CHECK_TTL_S", 5)))

    def get_dependency(self, worker_ctx) -> AccountStates:
        return self.states


def require_role(actor: dict, *roles: str) -> None:
    if not set(actor["roles"]) & set(roles):
        raise Forbidden.of("gateway.role-required", roles=", ".join(roles),
                           roles_zh=messages.names_zh("role", roles), code="role-required")
