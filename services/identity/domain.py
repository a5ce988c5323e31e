"""Who may sign in, and what of a person other services and the API may see."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
