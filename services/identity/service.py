"""identity: users, their roles and units, and password checks.

The architecture gives the gateway nothing persistent, so the accounts it signs tokens
for live here, behind RPC. Residents, staff and partners are all users; what they may
do is decided by their roles (checked by the gateway) and by ownership (checked by the
service that owns the thing).
"""
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from minqing_kernel.db import Database
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.timer import configured_timer
from minqing_kernel.web import OpsEndpoints
from services.identity import accounts, handlers, models, units
from services.identity.hashing import PasswordChecks, hash_new_password
from services.identity.sms import SmsSender, sender_from


class SmsPort(DependencyProvider):
    """The SMS sender the configuration names (services/identity/sms.py)."""

    def setup(self) -> None:
        self.sender = sender_from(self.container.config)

    def get_dependency(self, worker_ctx) -> SmsSender:
        return self.sender


class IdentityService(OpsEndpoints):
    name = "identity"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()
    password_checks = PasswordChecks()
    sms = SmsPort()

    @rpc
    def authenticate(self, credentials: dict) -> dict:
        return handlers.authenticate(self.db, self.password_checks, credentials)

    @rpc
    def account_state(self, user_id: str) -> dict | None:
        """What the gateway checks every token against (cached there for seconds)."""
        return handlers.account_state(self.db, user_id)

    # Changes that every token already issued must follow. No HTTP endpoint yet: the
    # accounts issue's admin API will call these as they are.

    @rpc
    def change_roles(self, user_id: str, roles: list[str]) -> dict:
        return handlers.change_roles(self.db, user_id, roles)

    @rpc
    def move_unit(self, user_id: str, unit_id: str | None) -> dict:
        return handlers.move_unit(self.db, user_id, unit_id)

    @rpc
    def deactivate(self, user_id: str) -> dict:
        return handlers.deactivate(self.db, user_id)

    @rpc
    def reactivate(self, user_id: str) -> dict:
        return handlers.reactivate(self.db, user_id)

    @rpc
    def lock_account(self, user_id: str, seconds: int) -> dict:
        return handlers.lock_account(self.db, user_id, seconds)

    @rpc
    def unlock_account(self, user_id: str) -> dict:
        return handlers.unlock_account(self.db, user_id)

    @rpc
    def revoke_sessions(self, user_id: str) -> dict:
        return handlers.revoke_sessions(self.db, user_id)

    @rpc
    def get_user(self, user_id: str) -> dict:
        return handlers.get_user(self.db, user_id)

    @rpc
    def partner_for_api_key(self, api_key: str) -> dict:
        """Open311: the partner actor for an api_key, or Forbidden."""
        return handlers.partner_for_api_key(self.db, api_key)

    # --- the account lifecycle (accounts.py) ---------------------------------------------

    @rpc
    def request_sms_code(self, data: dict) -> dict:
        return accounts.request_code(self.db, data)

    @rpc
    def sign_up(self, data: dict) -> dict:
        return accounts.sign_up(self.db, hash_new_password, data)

    @rpc
    def sign_in_with_code(self, data: dict) -> dict:
        return accounts.sign_in_with_code(self.db, data)

    @rpc
    def reset_password(self, data: dict) -> dict:
        return accounts.reset_password(self.db, hash_new_password, data)

    @rpc
    def change_password(self, user_id: str, data: dict) -> dict:
        return accounts.change_password(self.db, self.password_checks, hash_new_password,
                                        user_id, data)

    @rpc
    def create_staff(self, actor_id: str, data: dict) -> dict:
        return accounts.create_staff(self.db, hash_new_password, actor_id, data)

    @rpc
    def update_staff(self, actor_id: str, user_id: str, data: dict) -> dict:
        return accounts.update_staff(self.db, actor_id, user_id, data)

    @rpc
    def account_changes(self, user_id: str) -> dict:
        return accounts.account_changes(self.db, user_id)

    @rpc
    def delete_account(self, user_id: str) -> dict:
        return accounts.delete_account(self.db, user_id)

    # --- units and grids, managed by admins (units.py) ------------------------------------

    @rpc
    def list_units(self) -> dict:
        return units.list_units(self.db)

    @rpc
    def create_unit(self, actor_id: str, data: dict) -> dict:
        return units.create_unit(self.db, actor_id, data)

    @rpc
    def update_unit(self, actor_id: str, unit_id: str, data: dict) -> dict:
        return units.update_unit(self.db, actor_id, unit_id, data)

    @rpc
    def add_grid(self, actor_id: str, unit_id: str, data: dict) -> dict:
        return units.add_grid(self.db, actor_id, unit_id, data)

    @rpc
    def update_grid(self, actor_id: str, unit_id: str, grid_id: str, data: dict) -> dict:
        return units.update_grid(self.db, actor_id, unit_id, grid_id, data)

    @rpc
    def unit_changes(self, unit_id: str) -> dict:
        return units.unit_changes(self.db, unit_id)

    @configured_timer("SMS_RELAY_INTERVAL_S", 0.5)
    def send_sms(self) -> None:
        """The SMS outbox's relay: what request_sms_code accepted goes out from here."""
        accounts.send_pending_sms(self.db, self.sms)

    @configured_timer("SMS_PURGE_INTERVAL_S", 3600)
    def forget_old_codes(self) -> None:
        """Codes and their messages (which name a number) are kept a day, no longer."""
        accounts.forget_old_codes(self.db)
