"""The account lifecycle over HTTP (issue #19): SMS codes, sign-up, signing in with a
code, password reset, and staff managed by admins. Mixed into GatewayService like the
Open311 endpoints: its own file so the gateway's other routes are left as they are.

Staff changes are effective at once: identity bumps the account's token_version in the
commit that changes it, and this process forgets its cached state of the account right
after, so the account's next request through this gateway is checked against the new
version. Other gateway replicas see it within TOKEN_CHECK_TTL_S (gateway/auth.py).
"""
from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from prometheus_client import Counter

from gateway import auth
from gateway.body import body
from minqing_kernel.errors import Forbidden, TooManyRequests
from minqing_kernel.ratelimit import RateLimit
from minqing_kernel.web import client_address, http, json_response

ADMINS = ("admin",)
BEIJING = ZoneInfo("Asia/Shanghai")
MAX_EXPORT_PAGES = 100  # of 100 reports each: far beyond what one person files
# Per number, identity counts them (minqing_sms_throttled_total{by="number"}).
SMS_CLIENT_THROTTLED = Counter("minqing_sms_client_throttled_total",
                               "Code requests refused because one client asked too often")


def SmsClientRateLimit() -> RateLimit:  # noqa: N802 (reads like the provider it returns)
    """Code requests per client address, from SMS_CLIENT_RATE_PER_MIN and SMS_CLIENT_BURST:
    one number may have a code a minute (identity), and one client may not make the
    platform text a thousand numbers (this)."""
    return RateLimit("SMS_CLIENT_RATE_PER_MIN", "SMS_CLIENT_BURST", 10, 5)


def too_many_codes(wait_s: float) -> TooManyRequests:
    seconds = max(1, math.ceil(wait_s))
    return TooManyRequests.of("gateway.sms-client-throttled", seconds=seconds,
                              code="sms-client-throttled", retry_after_s=seconds)


class AccountEndpoints:
    """Needs from the service: identity, intake, config, sms_limit, sign_in_limits,
    accounts (the token-state cache), actor() and token_response()."""

    def _body(self, request) -> dict:
        return body(request)

    @http("POST", "/v1/auth/sms-codes", max_body_bytes=1024)
    def request_sms_code(self, request):
        client = client_address(request.environ, int(self.config.get("TRUSTED_PROXIES", 0)))
        wait = self.sms_limit.take(client)
        if wait:
            SMS_CLIENT_THROTTLED.inc()
            raise too_many_codes(wait)
        return json_response(self.identity.request_sms_code(self._body(request)), 202)

    @http("POST", "/v1/auth/sign-up", max_body_bytes=4096)
    def sign_up(self, request):
        return self.token_response(self.identity.sign_up(self._body(request)), 201)

    @http("POST", "/v1/auth/code-sign-in", max_body_bytes=1024)
    def sign_in_with_code(self, request):
        return self.token_response(self.identity.sign_in_with_code(self._body(request)))

    @http("POST", "/v1/auth/password-reset", max_body_bytes=4096)
    def reset_password(self, request):
        user = self.identity.reset_password(self._body(request))
        self.accounts.forget(user["id"])
        return self.token_response(user)

    @http("POST", "/v1/me/password", max_body_bytes=4096)
    def change_password(self, request):
        """The signed-in person changes their password with the current one. Throttled
        as sign-in is (a stolen token must not become a way to guess the password), and
        every other session is signed out; this one gets a fresh token."""
        actor = self.actor(request)
        client = client_address(request.environ, int(self.config.get("TRUSTED_PROXIES", 0)))
        # Its own count of wrong passwords: five here throttle changing it from this
        # client, never signing in (nor does a wrong sign-in throttle this).
        key = f"password-change:{actor['id']}"
        self.sign_in_limits.before_attempt(client, key)
        try:
            user = self.identity.change_password(actor["id"], self._body(request))
        except Forbidden:
            self.sign_in_limits.failed(client, key)
            raise
        self.sign_in_limits.succeeded(client, key)
        self.accounts.forget(actor["id"])  # the old tokens are refused from the next request
        return self.token_response(user)

    @http("GET", "/v1/me/data")
    def export_my_data(self, request):
        """Everything the platform keeps about the signed-in person (PIPL's right to see
        and copy): the account, who changed it, and the reports they filed."""
        actor = self.actor(request)
        # Read as a resident would: only what they filed, whatever their roles let them
        # read of others' (an operator's export is not everyone's reports).
        own = {"id": actor["id"], "roles": ["resident"], "unit_id": None}
        reports, cursor = [], None
        for _ in range(MAX_EXPORT_PAGES):
            page = self.intake.list_reports(own, cursor, 100)
            # Not the calls an operator took for others: those are the callers' data.
            reports += [r for r in page["items"] if r.get("reporter_id") == actor["id"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        return json_response(
            {"exported_at": datetime.now(BEIJING).isoformat(timespec="seconds"),
             "account": self.identity.get_user(actor["id"]),
             "changes": self.identity.account_changes(actor["id"])["items"],
             "reports": reports},
            headers={"Content-Disposition": 'attachment; filename="minqing-my-data.json"'})

    @http("DELETE", "/v1/me")
    def delete_my_account(self, request):
        actor = self.actor(request)
        result = self.identity.delete_account(actor["id"])
        self.accounts.forget(actor["id"])  # this token is refused from the next request
        return json_response(result)

    # --- staff, managed by admins --------------------------------------------------------

    @http("POST", "/v1/admin/staff", max_body_bytes=4096)
    def create_staff(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *ADMINS)
        # identity, which owns units, refuses one it does not have (422 unknown-unit).
        user = self.identity.create_staff(actor["id"], self._body(request))
        return json_response(user, 201, {"Location": f"/v1/admin/staff/{user['id']}"})

    @http("PATCH", "/v1/admin/staff/<string:user_id>", max_body_bytes=4096)
    def update_staff(self, request, user_id):
        actor = self.actor(request)
        auth.require_role(actor, *ADMINS)
        user = self.identity.update_staff(actor["id"], user_id, self._body(request))
        self.accounts.forget(user_id)  # effective for this gateway at once
        return json_response(user)

    @http("GET", "/v1/admin/staff/<string:user_id>/changes")
    def staff_changes(self, request, user_id):
        auth.require_role(self.actor(request), *ADMINS)
        return json_response(self.identity.account_changes(user_id))
