"""identity: users, their roles and units, and password checks.

The architecture gives the gateway nothing persistent, so the accounts it signs tokens
for live here, behind RPC. Residents, staff and partners are all users; what they may
do is decided by their roles (checked by the gateway) and by ownership (checked by the
service that owns the thing).
"""
import sqlalchemy as sa
from eventlet import tpool
from nameko.dependency_providers import Config

from minqing_kernel.db import Database
from minqing_kernel.errors import NotFound, Unauthorized, validated
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.web import OpsEndpoints
from services.identity import domain, models, schemas


class IdentityService(OpsEndpoints):
    name = "identity"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()

    @rpc
    def authenticate(self, credentials: dict) -> dict:
        creds = validated(schemas.Credentials(), credentials, "sign-in request", "登录请求")
        with self.db.unit_of_work() as uow:
            row = uow.session.execute(sa.select(models.users).where(
                models.users.c.username == creds["username"])).first()
        # argon2 is CPU-bound C code: run it off the hub so other requests keep moving.
        ok = tpool.execute(domain.password_matches,
                                    row.password_hash if row else None, creds["password"])
        if not ok:
            raise Unauthorized("Wrong username or password.", "用户名或密码错误。",
                               code="bad-credentials")
        return domain.public_user(row)

    @rpc
    def get_user(self, user_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            row = uow.session.execute(sa.select(models.users).where(
                models.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"No user {user_id}.", f"用户 {user_id} 不存在。")
        return domain.public_user(row)
