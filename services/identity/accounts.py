"""identity's account lifecycle: residents sign up and sign in with an SMS code and reset
their password with one; admins create, change and deactivate staff accounts. Every
change is audited (account_changes) in the transaction that makes it, and every change
that tokens already issued must follow bumps token_version: the one revocation
mechanism (gateway/auth.py)."""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa

from minqing_kernel import messages
from minqing_kernel.errors import Conflict, Forbidden, Invalid, NotFound, validated
from services.identity import codes, domain, models, schemas, units
from services.identity.metrics import (
    ACCOUNTS_DELETED,
    PASSWORD_CHANGES,
    SMS_CODE_CHECKS,
    SMS_CODES_REQUESTED,
    SMS_EXPIRED_UNSENT,
    SMS_SEND_FAILURES,
    SMS_SENT,
    SMS_THROTTLED,
)
from services.identity.sms import SmsFailed, SmsSender

log = logging.getLogger(__name__)

STAFF_ROLES = domain.ROLES - {"resident", "partner"}
# A letter first: a username never looks like a mobile number (those sign in by number).
STAFF_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{2,63}$")
Now = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def audit(uow, user_id: str, actor_id: str, what: str, changes: dict) -> None:
    uow.session.execute(sa.insert(models.account_changes).values(
        user_id=user_id, actor_id=actor_id, what=what, changes=changes))


def _user_by_phone(uow, phone: str):
    u = models.users
    return uow.session.execute(sa.select(u).where(u.c.phone == phone)
                               .order_by(u.c.created_at).limit(1)).first()


# --- one-time codes ---------------------------------------------------------------------

def request_code(db, data: dict, now: Now = _now) -> dict:
    """Accept a request for a code: the code's row and its message go into the database in
    one transaction; the relay sends it (send_pending_sms). A code for signing in or
    resetting is only sent to a number with an account, but the answer is the same either
    way: nobody learns from it who has one."""
    data = validated(schemas.SmsCodeRequest(), data, "code-request")
    phone = codes.checked_phone(data["phone"])
    purpose = codes.checked_purpose(data["purpose"])
    at = now()
    c = models.sms_codes
    with db.unit_of_work() as uow:
        s = uow.session
        # One request per number at a time: two at once must not both pass the check.
        s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"sms:{phone}"))))
        last = s.execute(sa.select(sa.func.max(c.c.created_at)).where(c.c.phone == phone)).scalar()
        wait = codes.resend_wait(last, at)
        if wait:
            SMS_THROTTLED.labels("number").inc()
            raise codes.resend_too_soon(wait)
        registered = _user_by_phone(uow, phone) is not None
        send = purpose == "sign-up" or registered
        code_id, code = str(uuid.uuid4()), codes.new_code()
        # A newer code replaces the older ones for the same use: only the last one works.
        s.execute(sa.update(c).where(c.c.phone == phone, c.c.purpose == purpose,
                                     c.c.used_at.is_(None), c.c.burned_at.is_(None))
                  .values(burned_at=at))
        s.execute(sa.insert(c).values(
            id=code_id, phone=phone, purpose=purpose, created_at=at,
            code_hash=codes.code_hash(code_id, code if send else codes.new_code() + "x"),
            expires_at=at + timedelta(seconds=codes.CODE_TTL_S)))
        if send:
            s.execute(sa.insert(models.sms_outbox).values(id=code_id, phone=phone, code=code))
    SMS_CODES_REQUESTED.labels(purpose).inc()
    return {"expires_in": codes.CODE_TTL_S, "resend_after_s": codes.RESEND_INTERVAL_S}


def _take_code(uow, phone: str, purpose: str, given, at: datetime) -> tuple[str, int]:
    """(outcome, tries left) for the number's live code, recording the try."""
    c = models.sms_codes
    row = uow.session.execute(
        sa.select(c).where(c.c.phone == phone, c.c.purpose == purpose, c.c.used_at.is_(None),
                           c.c.burned_at.is_(None), c.c.expires_at > at)
        .order_by(c.c.created_at.desc()).limit(1).with_for_update()).first()
    if row is None:
        return "none", 0
    outcome = codes.check(row, given if isinstance(given, str) else "", at)
    values = ({"used_at": at} if outcome == codes.OK else
              {"attempts": row.attempts + 1, **({"burned_at": at}
                                               if outcome == codes.BURNED else {})})
    uow.session.execute(sa.update(c).where(c.c.id == row.id).values(**values))
    return outcome, codes.MAX_ATTEMPTS - row.attempts - 1


def with_code(db, phone, purpose: str, given, then: Callable, now: Now = _now):
    """Run `then(uow, phone)` if `given` is the number's live code for `purpose`, in the
    transaction that uses the code up. A wrong try is counted (and committed) first;
    if `then` refuses, the code stays unused."""
    phone = codes.checked_phone(phone)
    outcome, left = "none", 0
    with db.unit_of_work() as uow:
        outcome, left = _take_code(uow, phone, purpose, given, now())
        result = then(uow, phone) if outcome == codes.OK else None
    SMS_CODE_CHECKS.labels(outcome).inc()
    if outcome == codes.BURNED:
        log.info("a code for %s was tried %d times wrongly and is burned (the account is "
                 "not locked)", domain.mask_phone(phone), codes.MAX_ATTEMPTS)
    if outcome != codes.OK:
        raise codes.code_refused(left if outcome == codes.WRONG else None)
    return result


def _signed_in(row) -> dict:
    status = domain.account_status(row.active, row.locked_until, _now())
    if status != domain.ACTIVE:
        raise domain.account_disabled(status)
    return {**domain.public_user(row), "token_version": row.token_version}


# --- residents --------------------------------------------------------------------------

def sign_up(db, hash_password: Callable[[str], str], data: dict) -> dict:
    """A new resident account for a number that proves itself with its code. The number is
    kept for callbacks and signs in with the password too (handlers.authenticate), but it
    is not the username: usernames are shown to others, a number only masked."""
    data = validated(schemas.SignUp(), data, "sign-up")
    name = codes.checked_display_name(data.get("display_name"))
    password = codes.checked_password(data.get("password"))

    def create(uow, phone: str) -> dict:
        if _user_by_phone(uow, phone) is not None:
            raise Conflict.of("identity.phone-registered", code="phone-registered")
        user_id = f"resident-{uuid.uuid4().hex[:16]}"
        # Hashed only once the code is right: nobody without one can make us run argon2.
        row = uow.session.execute(sa.insert(models.users).values(
            id=user_id, username=user_id, display_name=name, password_hash=hash_password(password),
            roles=["resident"], unit_id=None, phone=phone).returning(*models.users.c)).first()
        audit(uow, user_id, user_id, "signed-up", {"display_name": name})
        return _signed_in(row)

    user = with_code(db, data.get("phone"), "sign-up", data.get("code"), create)
    log.info("resident %s signed up", user["id"], extra={"user_id": user["id"]})
    return user


def sign_in_with_code(db, data: dict) -> dict:
    data = validated(schemas.CodeSignIn(), data, "sign-in-request")

    def user_of(uow, phone: str) -> dict:
        row = _user_by_phone(uow, phone)
        if row is None:  # no code is sent to a number without an account: unreachable
            raise codes.code_refused()
        return _signed_in(row)

    return with_code(db, data.get("phone"), "sign-in", data.get("code"), user_of)


def reset_password(db, hash_password: Callable[[str], str], data: dict) -> dict:
    """A new password for the number's account; every other session is signed out (the
    token version moves) and the caller gets a token for the new one."""
    data = validated(schemas.PasswordReset(), data, "password-reset")
    password = codes.checked_password(data.get("password"))

    def reset(uow, phone: str) -> dict:
        found = _user_by_phone(uow, phone)
        if found is None:
            raise codes.code_refused()
        # Hashed only with the right code.
        row = _new_password(uow, found.id, hash_password(password), "password-reset")
        return _signed_in(row)

    user = with_code(db, data.get("phone"), "reset-password", data.get("code"), reset)
    log.info("account %s reset its password; its other sessions are signed out", user["id"],
             extra={"user_id": user["id"]})
    return user


def _new_password(uow, user_id: str, password_hash: str, what: str):
    """Set the account's password and sign out every session it has: token_version moves
    in the same statement, as revoke_sessions does (one revocation mechanism). The caller
    hands its own session a token at the new version."""
    u = models.users
    row = uow.session.execute(
        sa.update(u).where(u.c.id == user_id)
        .values(password_hash=password_hash, token_version=u.c.token_version + 1)
        .returning(*u.c)).first()
    audit(uow, user_id, user_id, what, {})
    return row


def wrong_current_password() -> Forbidden:
    # 403, not 401: the token is good, the password given with it is not.
    return Forbidden.of("identity.current-password-wrong", code="current-password-wrong")


def change_password(db, verify: Callable[[str | None, str], bool],
                    hash_password: Callable[[str], str], user_id: str, data: dict) -> dict:
    """A signed-in person changes their password, proving it with the current one: every
    other session is signed out (a token that leaked with the old password dies with it)
    and the caller gets a token at the new version for this one."""
    data = validated(schemas.PasswordChange(), data, "password-change")
    password = codes.checked_password(data["new_password"])
    u = models.users
    with db.unit_of_work() as uow:
        found = uow.session.execute(sa.select(u.c.password_hash).where(u.c.id == user_id)
                                    ).first()
    if found is None:
        raise NotFound.of("identity.account-not-found", user_id=user_id)
    if not verify(found.password_hash, data["current_password"]):
        PASSWORD_CHANGES.labels("wrong-current").inc()
        raise wrong_current_password()
    password_hash = hash_password(password)  # only once the current one was right
    with db.unit_of_work() as uow:
        # The same hash as checked: a reset or a change in between wins, this one fails.
        if uow.session.execute(sa.select(u.c.id).where(
                u.c.id == user_id, u.c.password_hash == found.password_hash)
                .with_for_update()).first() is None:
            PASSWORD_CHANGES.labels("wrong-current").inc()
            raise wrong_current_password()
        row = _new_password(uow, user_id, password_hash, "password-changed")
    PASSWORD_CHANGES.labels("changed").inc()
    log.info("account %s changed its password; its other sessions are signed out", user_id,
             extra={"user_id": user_id})
    return _signed_in(row)


# --- staff, managed by admins ---------------------------------------------------------------

def _staff_roles(roles) -> list[str]:
    roles = domain.checked_roles(roles)
    if not set(roles) <= STAFF_ROLES:
        raise Invalid.of("identity.bad-roles", roles=", ".join(sorted(STAFF_ROLES)),
                         code="bad-roles")
    return roles


def _unit(uow, unit_id) -> str | None:
    """A unit that exists here (identity owns units: units.py), or null."""
    if unit_id is not None and (not isinstance(unit_id, str) or not 0 < len(unit_id) <= 64):
        raise Invalid.of("identity.bad-unit", code="bad-unit")
    if unit_id is not None and not units.unit_exists(uow, unit_id):
        raise Invalid.of("identity.unknown-unit", unit_id=unit_id, code="unknown-unit")
    return unit_id


def create_staff(db, hash_password: Callable[[str], str], actor_id: str, data: dict) -> dict:
    data = validated(schemas.StaffAccount(), data, "staff-account")
    username = data.get("username")
    if not isinstance(username, str) or not STAFF_USERNAME.match(username):
        raise Invalid.of("identity.bad-username", code="bad-username")
    name = codes.checked_display_name(data.get("display_name"))
    roles = _staff_roles(data.get("roles"))
    phone = codes.checked_phone(data["phone"]) if data.get("phone") is not None else None
    password_hash = hash_password(codes.checked_password(data.get("password")))
    user_id = f"staff-{uuid.uuid4().hex[:16]}"
    with db.unit_of_work() as uow:
        unit_id = _unit(uow, data.get("unit_id"))
        taken = uow.session.execute(sa.select(models.users.c.id).where(
            models.users.c.username == username)).first()
        if taken is not None:
            raise Conflict.of("identity.username-taken", username=username,
                              code="username-taken")
        row = uow.session.execute(sa.insert(models.users).values(
            id=user_id, username=username, display_name=name, password_hash=password_hash,
            roles=roles, unit_id=unit_id, phone=phone).returning(*models.users.c)).first()
        audit(uow, user_id, actor_id, "staff-created",
              {"username": username, "roles": roles, "unit_id": unit_id})
    log.info("admin %s created staff account %s (%s) in unit %s", actor_id, user_id,
             ",".join(roles), unit_id, extra={"user_id": actor_id})
    return {**domain.public_user(row), "active": row.active}


def update_staff(db, actor_id: str, user_id: str, data: dict) -> dict:
    """Change a staff account's roles, unit, name or whether it is active, with its audit
    row in the same commit.

    Roles and unit are not bumped into a new token_version: the gateway takes them from
    identity on every request (gateway/auth.py), never from the token, so the handler's
    session goes on and its next request acts for the new unit only. Deactivating bumps
    the version (and the account's status refuses it anyway): its tokens are dead."""
    data = validated(schemas.StaffChange(), data, "staff-change")
    values: dict = {}
    if "roles" in data:
        values["roles"] = _staff_roles(data["roles"])
    if "display_name" in data:
        values["display_name"] = codes.checked_display_name(data["display_name"])
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise Invalid.of("identity.bad-active", code="bad-active")
        values["active"] = data["active"]
    unknown = sorted(set(data) - {"roles", "unit_id", "display_name", "active"})
    if unknown or not (values or "unit_id" in data):
        raise Invalid.of("identity.bad-staff-change", code="bad-staff-change")
    u = models.users
    with db.unit_of_work() as uow:
        current = uow.session.execute(sa.select(u.c.roles).where(u.c.id == user_id)).first()
        if current is None or not set(current.roles) <= STAFF_ROLES:
            raise NotFound.of("identity.staff-not-found", user_id=user_id)
        if "unit_id" in data:
            values["unit_id"] = _unit(uow, data["unit_id"])
        row = uow.session.execute(
            sa.update(u).where(u.c.id == user_id)
            .values(**values, token_version=u.c.token_version + (
                1 if values.get("active") is False else 0)).returning(*u.c)).first()
        audit(uow, user_id, actor_id, "staff-changed", values)
    log.info("admin %s changed staff account %s: %s; its tokens now need version %d",
             actor_id, user_id, values, row.token_version, extra={"user_id": actor_id})
    return {**domain.public_user(row), "active": row.active}


def account_changes(db, user_id: str) -> dict:
    c = models.account_changes
    with db.unit_of_work() as uow:
        if uow.session.execute(sa.select(models.users.c.id).where(
                models.users.c.id == user_id)).first() is None:
            raise NotFound.of("identity.account-not-found", user_id=user_id)
        rows = uow.session.execute(sa.select(c).where(c.c.user_id == user_id)
                                   .order_by(c.c.id)).all()
    return {"items": [{"at": r.at.isoformat(), "actor_id": r.actor_id, "what": r.what,
                       "changes": r.changes} for r in rows]}


# --- the SMS outbox relay ---------------------------------------------------------------------

def send_pending_sms(db, sender: SmsSender, now: Now = _now, batch: int = 20) -> int:
    """Send what request_code accepted, one message per transaction: its row is locked,
    sent, and marked sent in the same transaction. A crash between the send and the
    commit leaves it unsent, so it goes again under the same OutId (the message's
    id): the simulator keeps one message per OutId, and Aliyun's receipts carry the
    OutId so a repeat can be told. A code never goes out twice as two different codes
    and is never lost while identity is down (the row waits)."""
    o = models.sms_outbox
    sent = 0
    for _ in range(batch):
        with db.unit_of_work() as uow:
            at = now()
            row = uow.session.execute(
                sa.select(o).where(o.c.sent_at.is_(None), o.c.code.is_not(None),
                                   o.c.next_try_at <= at)
                .order_by(o.c.next_try_at).limit(1).with_for_update(skip_locked=True)).first()
            if row is None:
                return sent
            if row.created_at + timedelta(seconds=codes.CODE_TTL_S) <= at:
                SMS_EXPIRED_UNSENT.inc()
                log.error("the code for %s expired before the SMS provider took it (%d tries, "
                          "last: %s): check the provider (SMS_ENDPOINT) and its keys",
                          domain.mask_phone(row.phone), row.tries, row.last_error)
                uow.session.execute(sa.update(o).where(o.c.id == row.id).values(
                    code=None, last_error=f"expired unsent; {row.last_error}"[:200]))
                continue
            try:
                provider_id = sender.send(row.phone, row.code, row.id)
            except SmsFailed as failed:
                SMS_SEND_FAILURES.labels(failed.code[:40]).inc()
                delay = min(2 ** row.tries, 30)
                log.warning("the SMS provider did not take the code for %s (%s: %s); trying "
                            "again in %d s", domain.mask_phone(row.phone), failed.code,
                            failed.message[:100], delay)
                uow.session.execute(sa.update(o).where(o.c.id == row.id).values(
                    tries=row.tries + 1, next_try_at=at + timedelta(seconds=delay),
                    last_error=f"{failed.code}: {failed.message}"[:200]))
                continue
            uow.session.execute(sa.update(o).where(o.c.id == row.id).values(
                sent_at=at, code=None, tries=row.tries + 1, provider_id=provider_id[:64]))
            SMS_SENT.labels(urlsplit(getattr(sender, "endpoint", "")).netloc or "other").inc()
            sent += 1
    return sent


# What a code leaves behind: kept a day (enough to look into abuse of a number or a
# client), then deleted with the number it names. README.md, "Accounts", says so.
CODES_KEPT = timedelta(hours=24)


def forget_old_codes(db, now: Now = _now) -> int:
    """Delete codes and sent (or given up) messages older than CODES_KEPT."""
    before = now() - CODES_KEPT
    o, c = models.sms_outbox, models.sms_codes
    with db.unit_of_work() as uow:
        gone = uow.session.execute(sa.delete(o).where(
            o.c.created_at < before, sa.or_(o.c.sent_at.is_not(None), o.c.code.is_(None)))
        ).rowcount
        gone += uow.session.execute(sa.delete(c).where(c.c.created_at < before)).rowcount
    return gone


# --- a resident leaves ----------------------------------------------------------------------

DELETED_NAME = messages.zh("identity.deleted-name")


def delete_account(db, user_id: str) -> dict:
    """A resident deletes their account. What named them goes: the number, the name, the
    password, and the codes sent to the number. The row stays as a tombstone, deactivated
    (its tokens are refused at once, its number free to sign up again). The reports
    they filed stay, still counted, and `account.deleted` has intake and dispatch put
    them under a pseudonym that leads to no one. Staff accounts are deactivated by an
    admin instead: what they did is part of the record."""
    u = models.users
    with db.unit_of_work() as uow:
        row = uow.session.execute(sa.select(u).where(u.c.id == user_id).with_for_update()
                                  ).first()
        if row is None:
            raise NotFound.of("identity.account-not-found", user_id=user_id)
        if set(row.roles) != {"resident"}:
            raise Conflict.of("identity.not-a-resident-account", code="not-a-resident-account")
        if not row.active:
            raise Conflict.of("identity.account-inactive", code="account-inactive")
        if row.phone is not None:
            uow.session.execute(sa.delete(models.sms_codes).where(
                models.sms_codes.c.phone == row.phone))
            uow.session.execute(sa.delete(models.sms_outbox).where(
                models.sms_outbox.c.phone == row.phone))
        uow.session.execute(sa.update(u).where(u.c.id == user_id).values(
            username=user_id, display_name=DELETED_NAME, phone=None, active=False,
            password_hash=f"deleted:{uuid.uuid4().hex}",  # matches no password
            token_version=u.c.token_version + 1))
        # The audit stays (what happened to the account, and when), without the name it
        # recorded at sign-up.
        ac = models.account_changes
        uow.session.execute(sa.update(ac).where(ac.c.user_id == user_id).values(
            changes=sa.text("changes - 'display_name'::text - 'phone'::text")))
        audit(uow, user_id, user_id, "account-deleted", {})
        # Intake and dispatch re-key what they hold under the id to a pseudonym nobody
        # keeps the link to (identity neither: it is only in this event, whose outbox
        # row is purged after a day). Internal: partners never see it.
        uow.emit("account.deleted", user_id, {
            "user_id": user_id, "pseudonym": f"deleted-{uuid.uuid4().hex}",
            "deleted_at": _now().isoformat()})
    ACCOUNTS_DELETED.inc()
    log.info("account %s was deleted by its owner; its reports stay under a pseudonym",
             user_id, extra={"user_id": user_id})
    return {"id": user_id, "deleted": True}
