"""Who may sign in (passwords, lockout), and what of a person other services and the API
may see."""
from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from minqing_kernel.errors import Forbidden, TooManyRequests, Unauthorized

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


# --- sign-in lockout ------------------------------------------------------------------
# Guessing passwords online is slowed to a crawl: after `max_failures` wrong passwords in
# a row an account refuses every sign-in, the right password included, for `lock_s`.

@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_s: int = 15 * 60


@dataclass(frozen=True)
class SignInRecord:
    """What identity remembers of an account's recent sign-ins."""
    failed_logins: int = 0
    locked_until: datetime | None = None


def seconds_locked(record: SignInRecord, now: datetime) -> int:
    """How long the account still refuses sign-ins: 0 if it does not, else whole
    seconds rounded up (so a client that waits that long is never refused again)."""
    if record.locked_until is None or record.locked_until <= now:
        return 0
    return max(1, math.ceil((record.locked_until - now).total_seconds()))


def after_failed_sign_in(record: SignInRecord, now: datetime,
                         policy: LockoutPolicy) -> SignInRecord:
    """One more wrong password. The one that reaches the limit locks the account and
    starts a fresh count, so that after the lock it has `max_failures` tries again."""
    failed = record.failed_logins + 1
    if failed >= policy.max_failures:
        return SignInRecord(0, now + timedelta(seconds=policy.lock_s))
    return SignInRecord(failed, record.locked_until)


def after_successful_sign_in() -> SignInRecord:
    return SignInRecord()


def sign_in_locked(wait_s: int) -> TooManyRequests:
    minutes = max(1, math.ceil(wait_s / 60))
    return TooManyRequests(
        f"Too many wrong passwords: sign-in is locked; try again in {minutes} min.",
        f"密码错误次数过多，账号已暂时锁定，请 {minutes} 分钟后再试。",
        code="login-locked", retry_after_s=wait_s)


def wrong_credentials() -> Unauthorized:
    # The same problem whether the username exists or not: no one learns who has an account.
    return Unauthorized("Wrong username or password.", "用户名或密码错误。",
                        code="bad-credentials")


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
        return Forbidden("An api_key is required to submit service requests.",
                         "提交服务请求需要 api_key。", code="api-key-missing")
    return Forbidden("The api_key is not valid (unknown or revoked).",
                     "api_key 无效（不存在或已停用）。", code="api-key-invalid")
