"""identity's use cases: signing in, the account's state tokens are checked against and
the changes that revoke them, looking a user up, partners' API keys."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from minqing_kernel.errors import Invalid, NotFound, validated
from services.identity import codes, domain, models, schemas

log = logging.getLogger(__name__)


def authenticate(db, verify: Callable[[str | None, str], bool], credentials: dict,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict:
    """The user for these credentials (with the token_version a token must carry), or the
    problem saying why not.

    `verify` is domain.password_matches, bounded and run off the hub by the caller. How
    often a client may try is the gateway's to limit (gateway/signin.py): nothing here
    counts failures per account, so no stranger can lock an account's owner out. A
    locked or deactivated account is said to be so only after its right password.
    """
    creds = validated(schemas.Credentials(), credentials, "sign-in-request")
    users = models.users
    # A resident signs in with their mobile number (accounts.py keeps it out of the
    # username, which others may see); staff usernames never look like one.
    by = (users.c.phone if codes.PHONE.match(creds["username"]) else users.c.username)
    with db.unit_of_work() as uow:
        row = uow.session.execute(sa.select(users).where(by == creds["username"])
                                  .order_by(users.c.created_at).limit(1)).first()
    # A made-up name is hashed against a dummy: the same time, the same answer.
    if not verify(row.password_hash if row is not None else None, creds["password"]):
        raise domain.wrong_credentials()
    status = domain.account_status(row.active, row.locked_until, now())
    if status != domain.ACTIVE:
        log.info("sign-in of %s refused: the account is %s", row.id, status,
                 extra={"user_id": row.id})
        raise domain.account_disabled(status)
    return {**domain.public_user(row), "token_version": row.token_version}


# --- the account's state, and the changes every token must follow ------------------------

def account_state(db, user_id: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                  ) -> dict | None:
    """domain.token_state of the account, or None if there is no such account (deleted)."""
    with db.unit_of_work() as uow:
        row = uow.session.execute(sa.select(models.users).where(
            models.users.c.id == user_id)).first()
    return domain.token_state(row, now()) if row is not None else None


def _change_account(db, user_id: str, values: dict, what: str) -> dict:
    """Apply `values` and bump token_version in one statement: every token issued before
    is refused (or re-read) by the gateway from then on, within its cache time."""
    users = models.users
    with db.unit_of_work() as uow:
        row = uow.session.execute(
            sa.update(users).where(users.c.id == user_id)
            .values(**values, token_version=users.c.token_version + 1)
            .returning(*users.c)).first()
    if row is None:
        raise NotFound.of("identity.user-not-found", user_id=user_id)
    log.info("account %s: %s; its tokens now need version %d", user_id, what,
             row.token_version, extra={"user_id": user_id})
    return domain.token_state(row, datetime.now(UTC))


def change_roles(db, user_id: str, roles: list[str]) -> dict:
    roles = domain.checked_roles(roles)
    return _change_account(db, user_id, {"roles": roles}, f"roles changed to {roles}")


def move_unit(db, user_id: str, unit_id: str | None) -> dict:
    if unit_id is not None and (not isinstance(unit_id, str) or not 0 < len(unit_id) <= 64):
        raise Invalid.of("identity.bad-unit", code="bad-unit")
    return _change_account(db, user_id, {"unit_id": unit_id}, f"moved to unit {unit_id}")


def deactivate(db, user_id: str) -> dict:
    return _change_account(db, user_id, {"active": False}, "deactivated")


def reactivate(db, user_id: str) -> dict:
    return _change_account(db, user_id, {"active": True}, "reactivated")


def lock_account(db, user_id: str, seconds: int) -> dict:
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        raise Invalid.of("identity.bad-lock", code="bad-lock")
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    return _change_account(db, user_id, {"locked_until": until}, f"locked until {until}")


def unlock_account(db, user_id: str) -> dict:
    return _change_account(db, user_id, {"locked_until": None}, "unlocked")


def revoke_sessions(db, user_id: str) -> dict:
    """Sign the account out everywhere (a lost phone; a password change must do this too)."""
    return _change_account(db, user_id, {}, "signed out everywhere")


def get_user(db, user_id: str) -> dict:
    with db.unit_of_work() as uow:
        row = uow.session.execute(sa.select(models.users).where(
            models.users.c.id == user_id)).first()
    if row is None:
        raise NotFound.of("identity.user-not-found", user_id=user_id)
    return domain.public_user(row)


def partner_for_api_key(db, api_key) -> dict:
    """The partner actor an Open311 api_key stands for, or 403 (unknown, revoked, or its
    account no longer a partner)."""
    if not isinstance(api_key, str) or not api_key.strip():
        raise domain.api_key_refused(given=False)
    if len(api_key) > 200:
        raise domain.api_key_refused(given=True)
    k, u = models.api_keys, models.users
    with db.unit_of_work() as uow:
        row = uow.session.execute(
            sa.select(k.c.id, k.c.partner_id, u.c.roles).join(u, u.c.id == k.c.partner_id)
            .where(k.c.key_hash == domain.api_key_hash(api_key),
                   k.c.revoked_at.is_(None), u.c.active)).first()
    if row is None or "partner" not in row.roles:
        log.warning("an Open311 api_key was refused (unknown, revoked or not a partner's)")
        raise domain.api_key_refused(given=True)
    return {**domain.partner_actor(row.partner_id), "api_key_id": row.id}


def issue_api_key(db, partner_id: str, name: str) -> dict:
    """A new key for a partner account: {id, api_key}; the key is not kept, only its hash."""
    if not name or len(name) > 100:
        raise Invalid.of("identity.api-key-name", code="api-key-name")
    with db.unit_of_work() as uow:
        roles = uow.session.execute(sa.select(models.users.c.roles).where(
            models.users.c.id == partner_id)).scalar()
        if roles is None or "partner" not in roles:
            raise NotFound.of("identity.partner-not-found", partner_id=partner_id)
        key_id, key = domain.new_api_key()
        uow.session.execute(sa.insert(models.api_keys).values(
            id=key_id, partner_id=partner_id, name=name, key_hash=domain.api_key_hash(key)))
    log.info("api key %s issued to %s", key_id, partner_id, extra={"user_id": partner_id})
    return {"id": key_id, "partner_id": partner_id, "api_key": key}


def revoke_api_key(db, key_id: str) -> bool:
    with db.unit_of_work() as uow:
        done = uow.session.execute(sa.update(models.api_keys).where(
            models.api_keys.c.id == key_id, models.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))).rowcount
    return bool(done)
