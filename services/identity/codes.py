"""One-time SMS codes: what a code is, how long it lives, how often it may be tried and
asked for. Plain rules, no I/O; handlers.py keeps them in the database.

A code is 6 digits, lives CODE_TTL_S, and may be tried MAX_ATTEMPTS times: the fifth
wrong try burns that code, never the account (a stranger who types a number must not be
able to lock its owner out; they can only make the owner ask for a new code). A number
may be sent a new code once every RESEND_INTERVAL_S; the gateway also limits how many
codes one client may ask for, whatever the numbers (SMS costs money and is an attack on
the people whose phones ring).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from minqing_kernel.errors import Invalid, TooManyRequests

CODE_TTL_S = 300
MAX_ATTEMPTS = 5
RESEND_INTERVAL_S = 60
PURPOSES = ("sign-up", "sign-in", "reset-password")
# A mainland mobile number, as residents type it (no +86).
PHONE = re.compile(r"^1[3-9][0-9]{9}$")
CODE = re.compile(r"^[0-9]{6}$")

OK, WRONG, BURNED = "ok", "wrong", "burned"


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(code_id: str, code: str) -> str:
    """Kept instead of the code: a leaked table does not show live codes. Keyed by the
    row's id so that one hash says nothing about another row."""
    return hmac.new(code_id.encode(), code.encode(), hashlib.sha256).hexdigest()


def checked_phone(phone) -> str:
    if not isinstance(phone, str) or not PHONE.match(phone):
        raise Invalid.of("identity.bad-phone", code="bad-phone")
    return phone


def checked_purpose(purpose) -> str:
    if purpose not in PURPOSES:
        raise Invalid.of("identity.bad-purpose", value=', '.join(PURPOSES), code="bad-purpose")
    return purpose


def resend_wait(last_sent_at: datetime | None, now: datetime) -> int:
    """Seconds before this number may be sent another code (0: now)."""
    if last_sent_at is None:
        return 0
    left = (last_sent_at + timedelta(seconds=RESEND_INTERVAL_S) - now).total_seconds()
    return max(0, int(left + 0.999))


def resend_too_soon(wait_s: int) -> TooManyRequests:
    return TooManyRequests.of("identity.sms-resend-too-soon", wait_s=wait_s,
                              code="sms-resend-too-soon", retry_after_s=wait_s)


def check(row, given: str, now: datetime) -> str:
    """OK, WRONG (tries left) or BURNED (this try was the last one allowed) for a live
    code's row (attempts, code_hash, id). Expiry and use are the query's to exclude."""
    if hmac.compare_digest(row.code_hash, code_hash(row.id, given)):
        return OK
    return BURNED if row.attempts + 1 >= MAX_ATTEMPTS else WRONG


def code_refused(tries_left: int | None = None) -> Invalid:
    """No live code matched. The same answer for "never sent", "expired", "used" and
    "burned", so nobody learns which numbers were sent codes."""
    if tries_left:
        return Invalid.of("identity.sms-code-wrong", tries_left=tries_left,
                          code="sms-code-wrong")
    return Invalid.of("identity.sms-code-invalid", code="sms-code-invalid")


def checked_password(password) -> str:
    if not isinstance(password, str) or not 8 <= len(password) <= 128:
        raise Invalid.of("identity.bad-password", code="bad-password")
    return password


def checked_display_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        raise Invalid.of("identity.bad-display-name", code="bad-display-name")
    return name.strip()
