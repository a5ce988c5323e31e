"""Who may sign in (passwords, the account's state), and what of a person other services
and the API may see.

Sign-in throttling is not here: it is the gateway's (gateway/signin.py), keyed by client,
because a count kept per account lets any stranger who knows a username lock its owner
out (issue #10, finding 9)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from minqing_kernel import messages
from minqing_kernel.errors import Forbidden, Invalid, Unauthorized

ROLES = frozenset({"resident", "patroller", "operator", "handler", "leader", "lawyer",
                   "admin", "partner", "discipline"})

# argon2id with the library's defaults (RFC 9106 low-memory profile): a real KDF, and
# slow enough that a stolen table is expensive to crack.
_hasher = PasswordHasher()
# Verified against when the username does not exist, so that "no such user" and "wrong
# password" take the same time and cannot be told apart.
_DUMMY_HASH = _hasher.hash("no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def mask_phone(phone: str | None) -> str | None:
    """13800000001 -> 138****0001: enough for a person to recognise, not to call."""
    if not phone or len(phone) < 7:
        return phone
    return f"{phone[:3]}****{phone[-4:]}"


def public_user(row) -> dict:
    return {"id": row.id, "username": row.username, "display_name": row.display_name,
            "roles": list(row.roles), "unit_id": row.unit_id, "phone": mask_phone(row.phone)}


# --- the account's current state, which every token is checked against -----------------
# A token names its account and the account's token_version when it was issued. Any change
# that must reach tokens already out there (roles, unit, a lock, deactivation, a password
# change, "sign out everywhere") bumps the version; the gateway compares, at most
# TOKEN_CHECK_TTL_S seconds late, and takes roles and unit from here, not from the token.

ACTIVE, DEACTIVATED, LOCKED = "active", "deactivated", "locked"


def account_status(active: bool, locked_until: datetime | None, now: datetime) -> str:
    if not active:
        return DEACTIVATED
    if locked_until is not None and locked_until > now:
        return LOCKED
    return ACTIVE


def token_state(row, now: datetime) -> dict:
    """What the gateway needs to accept a token: who, with what roles and unit now, at
    which version, and whether the account may act at all."""
    return {"id": row.id, "roles": list(row.roles), "unit_id": row.unit_id,
            "token_version": row.token_version,
            "status": account_status(row.active, row.locked_until, now)}


def checked_roles(roles) -> list[str]:
    if (not isinstance(roles, list) or not roles
            or not all(isinstance(r, str) and r in ROLES for r in roles)):
        raise Invalid.of("identity.bad-role-list", roles=", ".join(sorted(ROLES)),
                         roles_zh=messages.names_zh("role", sorted(ROLES)), code="bad-roles")
    return sorted(set(roles))


def account_disabled(status: str) -> Forbidden:
    # Said only to someone who gave the right password: nobody else learns the state.
    if status == LOCKED:
        return Forbidden.of("identity.account-locked", code="account-locked")
    return Forbidden.of("identity.account-deactivated", code="account-deactivated")


def wrong_credentials() -> Unauthorized:
    # The same problem whether the username exists or not: no one learns who has an account.
    return Unauthorized.of("identity.bad-credentials", code="bad-credentials")


# --- Open311 partners' API keys ---------------------------------------------------------
# A key is 32 random bytes behind a prefix and its id: `mq311_<id>_<secret>`. It is kept
# as its SHA-256, not an argon2 hash: a random 256-bit secret cannot be guessed however
# fast the hash, and an unsalted hash can be looked up by index on every request, where
# argon2 (salted, slow on purpose) would have to be tried against every key.
API_KEY_PREFIX = "mq311_"


def new_api_key() -> tuple[str, str]:
    """(key id, key): the key is shown to its partner once and never stored."""
    key_id = secrets.token_hex(8)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def partner_actor(partner_id: str) -> dict:
    """Who a key acts as: its partner, with the partner role only, whatever else the
    account may be."""
    return {"id": partner_id, "roles": ["partner"], "unit_id": None}


def api_key_refused(given: bool) -> Forbidden:
    if not given:
        return Forbidden.of("identity.api-key-missing", code="api-key-missing")
    return Forbidden.of("identity.api-key-invalid", code="api-key-invalid")
