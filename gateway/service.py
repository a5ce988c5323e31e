"""The gateway: HTTP for the mobile app and the command-center console.

Thin by design: it authenticates, parses, checks roles, calls the owning service over
RPC and maps errors (problems arrive typed and leave as problem+json). Ownership is
decided by the service that owns the thing.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import yaml
from nameko.dependency_providers import Config

from gateway import accounts as account_routes
from gateway import auth
from gateway import rewards as reward_routes
from gateway.body import body
from gateway.media import MediaEndpoints
from gateway.open311 import Open311Endpoints
from gateway.ratelimit import (
    ReportRateLimit,
    UploadRateLimit,
    too_many_reports,
    too_many_uploads,
)
from gateway.signin import SignInLimits
from gateway.submission import submission_id
from gateway.units import UnitEndpoints
from minqing_kernel.errors import Unauthorized
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import RemoteService
from minqing_kernel.web import OpsEndpoints, client_address, http, json_response

OPENAPI = Path(__file__).resolve().parent.parent / "contracts" / "openapi.yaml"
REPORTERS = ("resident", "patroller", "operator")
UPLOADERS = ("resident", "patroller", "operator", "handler")
CASE_WORKERS = ("operator", "admin", "handler")
STAFF = ("operator", "admin", "handler", "leader", "discipline")
OPERATORS = ("operator", "admin")
OVERSIGHT = ("operator", "admin", "leader", "discipline")
VOLUNTEERS = ("patroller",)  # 红袖章 volunteers take up micro-wishes
SUPERVISORS = ("operator", "admin", "leader", "discipline")  # the supervision report
AUDITORS = ("operator", "admin", "discipline")  # who may check a trail's chain


@cache
def openapi_document() -> str:
    return json.dumps(yaml.safe_load(OPENAPI.read_text(encoding="utf-8")), ensure_ascii=False)


class GatewayService(OpsEndpoints, Open311Endpoints, account_routes.AccountEndpoints,
                     UnitEndpoints, MediaEndpoints, reward_routes.RewardEndpoints):
    name = "gateway"
    config = Config()
    timer = EntrypointTimer()
    correlation = CorrelationContext()
    identity = RemoteService("identity")
    intake = RemoteService("intake")
    dispatch = RemoteService("dispatch")
    rewards = RemoteService("rewards")
    report_limit = ReportRateLimit()
    upload_limit = UploadRateLimit()
    sign_in_limits = SignInLimits()
    accounts = auth.AccountStateCache()
    sms_limit = account_routes.SmsClientRateLimit()

    def actor(self, request) -> dict:
        """The signed-in user, as the account is now (see gateway/auth.py)."""
        claims = auth.claims_from(request.headers.get("Authorization"),
                                  self.config["JWT_SECRET"])
        return auth.actor_from(claims, self.accounts.get(claims["sub"],
                                                         self.identity.account_state))

    @http("GET", "/v1/openapi.json")
    def openapi(self, request):
        return 200, {"Content-Type": "application/json"}, openapi_document()

    # A username and a password fit in far less: a large body is refused unread.
    @http("POST", "/v1/auth/token", max_body_bytes=4096)
    def token(self, request):
        credentials = body(request)
        client = client_address(request.environ, int(self.config.get("TRUSTED_PROXIES", 0)))
        username = credentials.get("username")
        self.sign_in_limits.before_attempt(client, username)
        try:
            user = self.identity.authenticate(credentials)
        except Unauthorized:
            self.sign_in_limits.failed(client, username)
            raise
        self.sign_in_limits.succeeded(client, username)
        return self.token_response(user)

    def token_response(self, user: dict, status: int = 200):
        """A bearer token for `user` (identity's answer, with its token_version)."""
        ttl = int(self.config.get("TOKEN_TTL_S", 3600))
        return json_response({"access_token": auth.issue_token(user, self.config["JWT_SECRET"],
                                                               ttl),
                              "token_type": "Bearer", "expires_in": ttl,
                              "user": {k: v for k, v in user.items() if k != "token_version"}},
                             status)

    @http("GET", "/v1/me")
    def me(self, request):
        return json_response(self.identity.get_user(self.actor(request)["id"]))

    @http("GET", "/v1/categories")
    def categories(self, request):
        self.actor(request)
        return json_response({"items": self.intake.list_categories()})

    @http("GET", "/v1/units")
    def units(self, request):
        # Public names only (no leader, no staff): a resident reads who handles her case.
        self.actor(request)
        return json_response({"items": self.dispatch.list_units()})

    @http("POST", "/v1/uploads")
    def create_upload(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *UPLOADERS)
        wait = self.upload_limit.take(actor["id"])
        if wait:
            raise too_many_uploads(wait)
        return json_response(self.intake.create_upload(actor, body(request)), 201)

    @http("POST", "/v1/reports")
    def submit_report(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *REPORTERS)
        # Before the body is even read: a runaway phone costs the services nothing.
        wait = self.report_limit.take(actor["id"])
        if wait:
            raise too_many_reports(wait)
        submission = body(request)
        report = self.intake.submit_report(
            actor, submission, submission_id(actor, request.headers.get("Idempotency-Key")))
        return json_response(report, 201, {"Location": f"/v1/reports/{report['id']}"})

    @http("GET", "/v1/reports")
    def list_reports(self, request):
        actor = self.actor(request)
        page = self.intake.list_reports(actor, request.args.get("cursor"),
                                        request.args.get("limit"))
        # Each report's case status beside it (issue #12, point 7): one batch call per
        # page, so a phone needs no call per report. Not a copy kept in intake: the status
        # is dispatch's, always current, and dispatch applies who may see which case.
        cases = self.dispatch.cases_for_reports(
            actor, [r["id"] for r in page["items"]]) if page["items"] else {}
        for report in page["items"]:
            report["case"] = cases.get(report["id"])
        return json_response(page)

    @http("GET", "/v1/reports/<string:report_id>")
    def get_report(self, request, report_id):
        actor = self.actor(request)
        report = self.intake.get_report(actor, report_id)
        case = self.dispatch.case_for_report(actor, report_id)
        report["case"] = ({"id": case["id"], "status": case["status"],
                           "status_zh": case["status_zh"]} if case else None)
        return json_response(report)

    @http("GET", "/v1/cases")
    def list_cases(self, request):
        actor = self.actor(request)
        return json_response(self.dispatch.list_cases(actor, request.args.to_dict()))

    @http("GET", "/v1/cases/<string:case_id>")
    def get_case(self, request, case_id):
        return json_response(self.dispatch.get_case(self.actor(request), case_id))

    @http("POST", "/v1/cases/<string:case_id>/actions")
    def act(self, request, case_id):
        actor = self.actor(request)
        auth.require_role(actor, *CASE_WORKERS)
        action = body(request)
        if "attachments" in action:
            # The handler's photos are checked like a resident's (present, theirs, really
            # the type they claim) and reach dispatch described, as a report's do.
            action["attachments"] = self.intake.check_attachments(
                actor["id"], action["attachments"], f"case:{case_id}")
        return json_response(self.dispatch.act(actor, case_id, action))

    @http("GET", "/v1/cases/<string:case_id>/timeline")
    def timeline(self, request, case_id):
        return json_response(self.dispatch.timeline(self.actor(request), case_id))

    @http("POST", "/v1/cases/<string:case_id>/feedback")
    def feedback(self, request, case_id):
        actor = self.actor(request)
        # An operator records a phone caller's rating (dispatch: phone cases only).
        auth.require_role(actor, "resident", "patroller", "operator")
        return json_response(self.dispatch.give_feedback(actor, case_id, body(request)))

    # --- screening and routes (issue 3) ---------------------------------------------------

    @http("GET", "/v1/cases/<string:case_id>/duplicates")
    def duplicates(self, request, case_id):
        actor = self.actor(request)
        auth.require_role(actor, *OPERATORS)
        return json_response(self.dispatch.duplicate_candidates(actor, case_id,
                                                                request.args.to_dict()))

    @http("GET", "/v1/routing-rules")
    def list_rules(self, request):
        auth.require_role(self.actor(request), *OPERATORS)
        return json_response(self.dispatch.list_rules())

    @http("PUT", "/v1/routing-rules")
    def put_rule(self, request):
        actor = self.actor(request)
        auth.require_role(actor, "admin")
        return json_response(self.dispatch.put_rule(actor, body(request)))

    @http("DELETE", "/v1/routing-rules/<string:rule_id>")
    def delete_rule(self, request, rule_id):
        actor = self.actor(request)
        auth.require_role(actor, "admin")
        return json_response(self.dispatch.delete_rule(actor, rule_id))

    @http("GET", "/v1/agenda")
    def agenda(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *OVERSIGHT)
        query = {k: v for k, v in request.args.items() if k in ("cursor", "limit")}
        return json_response(self.dispatch.list_cases(
            actor, {**query, "status": "escalated_leadership"}))

    @http("POST", "/v1/agenda/<string:case_id>/decision")
    def decide(self, request, case_id):
        actor = self.actor(request)
        auth.require_role(actor, *OPERATORS)
        return json_response(self.dispatch.decide(actor, case_id, body(request)))

    @http("GET", "/v1/projects")
    def list_projects(self, request):
        auth.require_role(self.actor(request), *OVERSIGHT)
        return json_response(self.dispatch.list_projects(request.args.to_dict()))

    @http("GET", "/v1/projects/<string:project_id>")
    def get_project(self, request, project_id):
        auth.require_role(self.actor(request), *OVERSIGHT)
        return json_response(self.dispatch.get_project(project_id))

    @http("PATCH", "/v1/projects/<string:project_id>")
    def update_project(self, request, project_id):
        actor = self.actor(request)
        auth.require_role(actor, *OPERATORS)
        return json_response(self.dispatch.update_project(actor, project_id, body(request)))

    @http("GET", "/v1/wishes")
    def list_wishes(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *VOLUNTEERS, *OPERATORS)
        return json_response(self.dispatch.list_wishes(actor, request.args.to_dict()))

    @http("POST", "/v1/wishes/<string:case_id>/claim")
    def claim_wish(self, request, case_id):
        actor = self.actor(request)
        auth.require_role(actor, *VOLUNTEERS)
        return json_response(self.dispatch.claim_wish(actor, case_id))

    @http("POST", "/v1/wishes/<string:case_id>/fulfil")
    def fulfil_wish(self, request, case_id):
        actor = self.actor(request)
        auth.require_role(actor, *VOLUNTEERS)
        fulfilment = body(request)
        if "attachments" in fulfilment:
            fulfilment["attachments"] = self.intake.check_attachments(
                actor["id"], fulfilment["attachments"], f"wish:{case_id}")
        return json_response(self.dispatch.fulfil_wish(actor, case_id, fulfilment))

    # --- supervision (督办): inbox, extensions, callbacks, SLA, report, trail check ------

    @http("GET", "/v1/inbox")
    def inbox(self, request):
        actor = self.actor(request)
        return json_response(self.dispatch.list_inbox(actor, request.args.to_dict()))

    @http("POST", "/v1/inbox/<string:item_id>/read")
    def mark_inbox_read(self, request, item_id):
        return json_response(self.dispatch.mark_inbox_read(self.actor(request), item_id))

    @http("POST", "/v1/cases/<string:case_id>/extensions")
    def request_extension(self, request, case_id):
        actor = self.actor(request)
        auth.require_role(actor, "handler")
        return json_response(self.dispatch.request_extension(actor, case_id, body(request)),
                             201)

    @http("POST", "/v1/cases/<string:case_id>/extensions/<string:extension_id>/decision")
    def decide_extension(self, request, case_id, extension_id):
        actor = self.actor(request)
        auth.require_role(actor, *OPERATORS)
        return json_response(self.dispatch.decide_extension(actor, case_id, extension_id,
                                                            body(request)))

    @http("GET", "/v1/callbacks")
    def callbacks(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *OPERATORS)
        return json_response(self.dispatch.list_callbacks(actor, request.args.to_dict()))

    @http("POST", "/v1/callbacks/<string:callback_id>")
    def record_callback(self, request, callback_id):
        actor = self.actor(request)
        auth.require_role(actor, *OPERATORS)
        return json_response(self.dispatch.record_callback(actor, callback_id, body(request)))

    @http("POST", "/v1/callbacks/<string:callback_id>/caller-number")
    def reveal_caller_number(self, request, callback_id):
        # Only an operator, who makes the call; dispatch names the callback's reports and
        # intake, which keeps the number, shows it and audits the showing.
        actor = self.actor(request)
        auth.require_role(actor, "operator")
        callback = self.dispatch.callback_to_make(actor, callback_id)
        return json_response(self.intake.reveal_caller_number(actor, callback),
                             headers={"Cache-Control": "no-store"})

    @http("GET", "/v1/sla/policies")
    def sla_policies(self, request):
        auth.require_role(self.actor(request), *STAFF)
        return json_response(self.dispatch.list_sla_policies(request.args.to_dict()))

    @http("PUT", "/v1/sla/policies/<string:category>/<string:priority>")
    def set_sla_policy(self, request, category, priority):
        actor = self.actor(request)
        auth.require_role(actor, "admin")
        return json_response(self.dispatch.set_sla_policy(actor, category, priority,
                                                          body(request)))

    @http("GET", "/v1/supervision/report")
    def supervision_report(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *SUPERVISORS)
        result = self.dispatch.supervision_report(actor, request.args.to_dict())
        if "csv" in result:
            return 200, {"Content-Type": "text/csv; charset=utf-8",
                         "Content-Disposition": 'attachment; filename="supervision.csv"'
                         }, result["csv"]
        return json_response(result)

    @http("GET", "/v1/cases/<string:case_id>/trail/verify")
    def verify_trail(self, request, case_id):
        auth.require_role(self.actor(request), *AUDITORS)
        return json_response(self.dispatch.verify_case_trail(case_id))
