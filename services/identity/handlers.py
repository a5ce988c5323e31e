"""identity's use cases: signing in (with its lockout) and looking a user up."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from minqing_kernel.errors import Invalid, NotFound, validated
from services.identity import domain, models, schemas

log = logging.getLogger(__name__)


class UnknownNames:
    """Sign-in records for usernames that have no account, kept in memory only.

    A username that does not exist must answer exactly as one that does: the same 401
    for a wrong password and, after as many tries, the same 429 `login-locked`, or the
    lockout itself would tell an attacker which accounts exist. Nothing is written for
    them (a spray of made-up names must not grow a table), so the records live here,
    at most `capacity` of them, the least recently tried forgotten first. With several
    identity replicas each counts the tries it sees, so a made-up name locks a little
    later than a real one: the difference blurs into the noise of round-robin.
    """

    def __init__(self, capacity: int = 10_000):
        self._records: OrderedDict[str, domain.SignInRecord] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, username: str) -> domain.SignInRecord:
        with self._lock:
            return self._records.get(username, domain.SignInRecord())

    def put(self, username: str, record: domain.SignInRecord) -> None:
        with self._lock:
            self._records[username] = record
            self._records.move_to_end(username)
            while len(self._records) > self._capacity:
                self._records.popitem(last=False)


def _record(row) -> domain.SignInRecord:
    return domain.SignInRecord(row.failed_logins, row.locked_until)


def authenticate(db, policy: domain.LockoutPolicy, strangers: UnknownNames,
                 verify: Callable[[str | None, str], bool], credentials: dict,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict:
    """The user for these credentials, or the problem saying why not.

    `verify` is domain.password_matches, run off the hub by the caller's choice. A locked
    account is refused before its password is checked: argon2 is the expensive part, and
    an attacker should not get to spend it.
    """
    creds = validated(schemas.Credentials(), credentials, "sign-in request", "登录请求")
    username = creds["username"]
    users = models.users
    with db.unit_of_work() as uow:
        row = uow.session.execute(sa.select(users).where(users.c.username == username)).first()
    record = _record(row) if row is not None else strangers.get(username)
    wait = domain.seconds_locked(record, now())
    if wait:
        raise domain.sign_in_locked(wait)
    ok = verify(row.password_hash if row is not None else None, creds["password"])
    # The record is re-read under a row lock: concurrent wrong guesses each count, and a
    # lock another request set meanwhile holds even against the right password. (Made-up
    # names take the same round trip, which finds nothing: the same time either way.)
    with db.unit_of_work() as uow:
        locked_row = uow.session.execute(
            sa.select(users.c.id, users.c.failed_logins, users.c.locked_until)
            .where(users.c.username == username).with_for_update()).first()
        if locked_row is None or row is None or locked_row.id != row.id:
            strangers.put(username, domain.after_failed_sign_in(record, now(), policy))
            raise domain.wrong_credentials()
        record = _record(locked_row)
        wait = domain.seconds_locked(record, now())
        if not wait:
            after = (domain.after_successful_sign_in() if ok
                     else domain.after_failed_sign_in(record, now(), policy))
            if after != record:
                uow.session.execute(sa.update(users).where(users.c.id == row.id).values(
                    failed_logins=after.failed_logins, locked_until=after.locked_until))
            if after.locked_until is not None and after.locked_until != record.locked_until:
                log.warning("sign-in locked for %s after %d wrong passwords", row.id,
                            policy.max_failures, extra={"user_id": row.id})
    if wait:
        raise domain.sign_in_locked(wait)
    if not ok:
        raise domain.wrong_credentials()
    return domain.public_user(row)


def get_user(db, user_id: str) -> dict:
    with db.unit_of_work() as uow:
        row = uow.session.execute(sa.select(models.users).where(
            models.users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"No user {user_id}.", f"用户 {user_id} 不存在。")
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
                   k.c.revoked_at.is_(None))).first()
    if row is None or "partner" not in row.roles:
        log.warning("an Open311 api_key was refused (unknown, revoked or not a partner's)")
        raise domain.api_key_refused(given=True)
    return {**domain.partner_actor(row.partner_id), "api_key_id": row.id}


def issue_api_key(db, partner_id: str, name: str) -> dict:
    """A new key for a partner account: {id, api_key}; the key is not kept, only its hash."""
    if not name or len(name) > 100:
        raise Invalid("A key needs a name of at most 100 characters.",
                      "密钥需要一个不超过 100 个字符的名称。", code="api-key-name")
    with db.unit_of_work() as uow:
        roles = uow.session.execute(sa.select(models.users.c.roles).where(
            models.users.c.id == partner_id)).scalar()
        if roles is None or "partner" not in roles:
            raise NotFound(f"No partner account {partner_id}.", f"合作方账号 {partner_id} 不存在。")
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
