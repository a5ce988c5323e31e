"""identity: users, their roles and units, and password checks.

The architecture gives the gateway nothing persistent, so the accounts it signs tokens
for live here, behind RPC. Residents, staff and partners are all users; what they may
do is decided by their roles (checked by the gateway) and by ownership (checked by the
service that owns the thing).
"""
from eventlet import tpool
from nameko.dependency_providers import Config

from minqing_kernel.db import Database
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.web import OpsEndpoints
from services.identity import domain, handlers, models

# Made-up usernames' sign-in records: this process's memory (see handlers.UnknownNames).
STRANGERS = handlers.UnknownNames()


def _password_matches_off_the_hub(password_hash: str | None, password: str) -> bool:
    # argon2 is CPU-bound C code: run it off the hub so other requests keep moving.
    return tpool.execute(domain.password_matches, password_hash, password)


class IdentityService(OpsEndpoints):
    name = "identity"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()

    def lockout_policy(self) -> domain.LockoutPolicy:
        return domain.LockoutPolicy(max_failures=int(self.config.get("LOGIN_MAX_FAILURES", 5)),
                                    lock_s=int(self.config.get("LOGIN_LOCK_S", 900)))

    @rpc
    def authenticate(self, credentials: dict) -> dict:
        return handlers.authenticate(self.db, self.lockout_policy(), STRANGERS,
                                     _password_matches_off_the_hub, credentials)

    @rpc
    def get_user(self, user_id: str) -> dict:
        return handlers.get_user(self.db, user_id)

    @rpc
    def partner_for_api_key(self, api_key: str) -> dict:
        """Open311: the partner actor for an api_key, or Forbidden."""
        return handlers.partner_for_api_key(self.db, api_key)
