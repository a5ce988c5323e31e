"""Who may do what: every gateway endpoint x every kind of user, as a table.

Each row of MATRIX is one endpoint; each column one role, relative to the thing the row
acts on (a report and its case owned by `owner`, assigned to the unit of
`handler-of-unit`). The cell is the status that user must get. Around the table:
tokens that must be refused everywhere (expired, forged, `alg: none`, HS512 with the
right secret, roles edited after signing), presigned upload URLs (one object, short
lived), the per-user report rate limit and the sign-in lockout.

Every JSON body any of these requests receives is scanned as it arrives: no full
11-digit phone number anywhere, and nobody outside the command center, leaders and
oversight learns who reported something other than themselves.
"""
from __future__ import annotations

import base64
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from gateway.service import GatewayService
from tests.fixtures import JPEG, PASSWORD, Client, post_upload, wait_for
from tests.tokens import (
    expired,
    forged,
    hs512_right_secret,
    roles_edited_after_signing,
    unsigned,
)

pytestmark = pytest.mark.integration

# The columns: who asks, relative to the report and case each row acts on.
USERS = {
    "anonymous": None,
    "owner": "resident-wang",                 # reported it
    "other-resident": "resident-li",
    "operator": "operator-zhou",
    "handler-of-unit": "handler-wujiang",     # the case is assigned to comm-wujiang
    "handler-other-unit": "handler-jinjiang",
    "leader": "leader-wujiang",               # leads comm-wujiang, the case's unit
    "admin": "admin",
    "patroller": "patroller-zhao",            # a patroller is a resident too
}
ROLES = tuple(USERS)
CASE_UNIT = "comm-wujiang"
# Who may see who reported a thing (dispatch.domain.SEES_REPORTERS, intake STAFF_READERS):
# not a leader, who reads the reports of the units they lead without the reporter.
SEES_REPORTERS = {"operator", "admin"}
HANDLERS = {"handler-of-unit", "handler-other-unit"}

# {report} is the owner's report, {case} its case, {phone_report} and {phone_case} a
# report an operator took on the phone (with the caller's number) and its case. The
# action and feedback rows each get a fresh case in the state the action needs.
MATRIX = {
    #                                         anon owner other oper h-unit h-oth lead admin patr
    "GET /v1/openapi.json":                  (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /health/live":                      (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /health/ready":                     (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /metrics":                          (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /v1/auth/token":                   (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /v1/me":                            (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /v1/categories":                    (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /v1/units":                         (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /v1/uploads":                      (401, 201, 201, 201, 201, 201, 403, 201, 201),
    "POST /v1/reports":                      (401, 201, 201, 201, 403, 403, 403, 201, 201),
    "GET /v1/reports":                       (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /v1/reports/{report}":              (401, 200, 403, 200, 403, 403, 200, 200, 403),
    "GET /v1/reports/{phone_report}":        (401, 403, 403, 200, 403, 403, 200, 200, 403),
    "GET /v1/cases":                         (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /v1/cases/{case}":                  (401, 200, 403, 200, 200, 403, 200, 200, 403),
    "GET /v1/cases/{phone_case}":            (401, 403, 403, 200, 200, 403, 200, 200, 403),
    "GET /v1/cases/{case}/timeline":         (401, 200, 403, 200, 200, 403, 200, 200, 403),
    # photos (issue #12): a media URL opens (302 to the store) for whoever may read the thing
    "GET /v1/reports/{report}/media/{photo}": (401, 302, 403, 302, 403, 403, 302, 302, 403),
    "GET /v1/cases/{case}/media/{photo}":    (401, 302, 403, 302, 302, 403, 302, 302, 403),
    "POST /v1/cases/{assigned}/actions assign":   (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "POST /v1/cases/{assigned}/actions accept":   (401, 403, 403, 403, 200, 403, 403, 403, 403),
    "POST /v1/cases/{accepted}/actions resolve":  (401, 403, 403, 403, 200, 403, 403, 403, 403),
    "POST /v1/cases/{resolved}/feedback":    (401, 200, 403, 403, 403, 403, 403, 403, 403),
    # an operator records a phone caller's rating (the admin here is an operator too)
    "POST /v1/cases/{phone_resolved}/feedback": (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "GET /v1/cases/{case}/duplicates":       (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "GET /v1/routing-rules":                 (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "PUT /v1/routing-rules":                 (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "DELETE /v1/routing-rules/{rule}":       (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "GET /v1/agenda":                        (401, 403, 403, 200, 403, 403, 200, 200, 403),
    "POST /v1/agenda/{escalated}/decision":  (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "GET /v1/projects":                      (401, 403, 403, 200, 403, 403, 200, 200, 403),
    "GET /v1/projects/{project}":            (401, 403, 403, 200, 403, 403, 200, 200, 403),
    "PATCH /v1/projects/{project}":          (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "GET /v1/wishes":                        (401, 403, 403, 200, 403, 403, 403, 200, 200),
    "GET /v1/wishes/{wish}/media/{photo}":   (401, 403, 403, 302, 403, 403, 403, 302, 302),
    "POST /v1/wishes/{wish}/claim":          (401, 403, 403, 403, 403, 403, 403, 403, 200),
    "POST /v1/wishes/{claimed}/fulfil":      (401, 403, 403, 403, 403, 403, 403, 403, 200),
    # Open311 (tests/e2e/test_open311.py): public reads; filing needs a partner's api_key,
    # which no bearer token stands in for. The phone report is listed: scanned, no number.
    "GET /open311/v2/discovery.{fmt}":       (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /open311/v2/services.{fmt}":        (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /open311/v2/services/{code}.{fmt}": (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /open311/v2/requests.{fmt}":       (403, 403, 403, 403, 403, 403, 403, 403, 403),
    "GET /open311/v2/requests.{fmt}":        (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /open311/v2/requests/{phone_report}.{fmt}": (200, 200, 200, 200, 200, 200, 200, 200,
                                                      200),
    "GET /open311/v2/tokens/{report}.{fmt}": (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /open311/v2/servicerequestupdates.{fmt}": (200, 200, 200, 200, 200, 200, 200, 200,
                                                    200),
    # supervision (services/dispatch/supervision.py)
    "GET /v1/inbox":                         (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /v1/inbox/{operators_item}/read":  (401, 404, 404, 200, 404, 404, 404, 200, 404),
    "POST /v1/cases/{assigned}/extensions":  (401, 403, 403, 403, 201, 403, 403, 403, 403),
    "POST /v1/cases/{assigned}/extensions/{requested}/decision":
                                             (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "GET /v1/callbacks":                     (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "POST /v1/callbacks/{queued}":           (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "POST /v1/callbacks/{phone_queued}/caller-number":
                                             (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "GET /v1/sla/policies":                  (401, 403, 403, 200, 200, 200, 200, 200, 403),
    "PUT /v1/sla/policies/{category}/{priority}":
                                             (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "GET /v1/supervision/report":            (401, 403, 403, 200, 403, 403, 200, 200, 403),
    "GET /v1/cases/{case}/trail/verify":     (401, 403, 403, 200, 403, 403, 403, 200, 403),
    # accounts (issue #19, tests/e2e/test_accounts.py): a number proves itself with its
    # SMS code, whoever is signed in; only admins manage staff
    "POST /v1/auth/sms-codes":               (202, 202, 202, 202, 202, 202, 202, 202, 202),
    "POST /v1/auth/sign-up":                 (201, 201, 201, 201, 201, 201, 201, 201, 201),
    "POST /v1/auth/code-sign-in":            (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /v1/auth/password-reset":          (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /v1/admin/staff":                  (401, 403, 403, 403, 403, 403, 403, 201, 403),
    "PATCH /v1/admin/staff/{staff}":         (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "GET /v1/admin/staff/{staff}/changes":   (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "GET /v1/me/data":                       (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "DELETE /v1/me":                         (401, 200, 200, 409, 409, 409, 409, 409, 409),
    # anyone signed in changes their own password (a throwaway account per call)
    "POST /v1/me/password":                  (401, 200, 200, 200, 200, 200, 200, 200, 200),
    # units and grids: identity's, managed by admins only
    "GET /v1/admin/units":                   (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "POST /v1/admin/units":                  (401, 403, 403, 403, 403, 403, 403, 201, 403),
    "PATCH /v1/admin/units/{unit}":          (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "POST /v1/admin/units/{community}/grids":
                                             (401, 403, 403, 403, 403, 403, 403, 201, 403),
    "PATCH /v1/admin/units/{community}/grids/{grid}":
                                             (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "GET /v1/admin/units/{unit}/changes":    (401, 403, 403, 403, 403, 403, 403, 200, 403),
    # rewards (issue #14, services/rewards/tests): residents see only their own; reviewers
    # decide rewards (four eyes above the threshold); finance (admin) batches, exports
    "GET /v1/rewards":                       (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /v1/rewards/balance":               (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /v1/rewards/{proposed}/actions approve":
                                             (401, 403, 403, 200, 403, 403, 200, 200, 403),
    "GET /v1/rewards/rules":                 (401, 403, 403, 200, 403, 403, 200, 200, 403),
    "PUT /v1/rewards/rules/{reward_class}/{priority}":
                                             (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "GET /v1/rewards/rules/changes":         (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "POST /v1/payouts":                      (401, 403, 403, 403, 403, 403, 403, 201, 403),
    "GET /v1/payouts":                       (401, 403, 403, 403, 403, 403, 200, 200, 403),
    "POST /v1/payouts/{pending}/actions refuse":
                                             (401, 403, 403, 403, 403, 403, 200, 200, 403),
    "GET /v1/payouts/export":                (401, 403, 403, 403, 403, 403, 403, 200, 403),
    "GET /v1/leaderboard":                   (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /v1/leaderboard/top-reporters":     (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "PUT /v1/rewards/flags/{resident}":      (401, 403, 403, 200, 403, 403, 403, 200, 403),
    "DELETE /v1/rewards/flags/{flagged}":    (401, 403, 403, 403, 403, 403, 200, 200, 403),
}
# For the lists: does the role find the owner's report / case in them?
FINDS = {
    #                   anon   owner other  oper  h-unit h-oth  lead  admin patr
    "GET /v1/reports": (None, True, False, True, False, False, True, True, False),
    "GET /v1/cases":   (None, True, False, True, True, False, True, True, False),
}
ROWS = [(endpoint, role, status)
        for endpoint, statuses in MATRIX.items()
        for role, status in zip(ROLES, statuses, strict=True)]

PHONE = re.compile(r"(?<![0-9A-Za-z])1\d{10}(?![0-9A-Za-z])")
MASKED = re.compile(r"^1\d{2}\*{4}\d{4}$")
CALLER_PHONE = "13912345678"
TALLY: Counter = Counter()  # checks run, checks passed, bodies scanned


# --- the world the rows act on ----------------------------------------------------------

def leaks(role: str, user: dict | None, body) -> list[str]:
    """What `body`, received by `role`, shows that it must not."""
    found = [f"a full phone number {m.group()}" for m in PHONE.finditer(
        json.dumps(body, ensure_ascii=False))]
    if user is None or role in SEES_REPORTERS:
        return found
    me = user["id"]

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        # (values, not the schemas of /v1/openapi.json, which name the same members)
        if isinstance(node.get("reporter_id"), str) and node["reporter_id"] != me:
            found.append(f"another's report (reporter {node['reporter_id']})")
        if isinstance(node.get("reporter_ids"), list):
            if set(node["reporter_ids"]) - {me}:
                found.append(f"who reported a case: {node['reporter_ids']}")
            if role in HANDLERS and "unit_id" in node and node["unit_id"] != user["unit_id"] \
                    and me not in node["reporter_ids"]:
                found.append(f"a case of another unit ({node['unit_id']})")
        if node.get("actor_role") == "reporter" and node.get("actor_id") not in (me, None):
            found.append(f"who rated a case: {node['actor_id']}")
        for value in node.values():
            walk(value)

    walk(body)
    return found


class Caller(Client):
    """A user of the gateway whose every JSON answer is scanned as it arrives."""

    def __init__(self, base: str, role: str, username: str | None, leaked: list):
        self.role, self.username, self._leaked = role, username, leaked
        super().__init__(base, username, on_response=self._scan)

    def _scan(self, response, *args, **kwargs):
        # The API's document is contracts/openapi.yaml as it is in the repository, the same
        # for everyone (gateway/tests/test_openapi.py): its sign-up examples need a
        # well-formed number, and it cannot carry anyone's.
        if urlsplit(response.url).path == "/v1/openapi.json":
            return
        if response.headers.get("Content-Type", "").split(";")[0].endswith("json"):
            TALLY["bodies scanned"] += 1
            for leak in leaks(self.role, self.user, response.json()):
                self._leaked.append(f"{self.role} {response.request.method} "
                                    f"{response.request.path_url}: {leak}")

    def submitted(self, **fields) -> dict:
        """A report submitted (it must be accepted), as the API returned it."""
        fields.setdefault("description", "楼下广场舞音响太吵，影响休息")
        r = self.report(**fields)
        assert r.status_code == 201, r.text
        return r.json()


@dataclass
class World:
    stack: object
    callers: dict
    report: dict
    case: str
    phone_report: dict
    phone_case: str
    leaked: list = field(default_factory=list)

    def case_of(self, report_id: str) -> str:
        return wait_for(lambda: self.stack.case_for(report_id), what="the case")

    def case_status(self, case_id: str) -> str:
        return self.stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c", c=case_id)

    def fresh_case(self, status: str, phone: str | None = None) -> str:
        """A new case from the owner's report (or, with `phone`, a call the operator took),
        assigned to CASE_UNIT and moved to `status`."""
        owner, operator = self.callers["owner"], self.callers["operator"]
        handler = self.callers["handler-of-unit"]
        case = self.case_of((operator.submitted(channel="phone", caller_phone=phone)
                             if phone else owner.submitted())["id"])
        steps = [(operator, {"action": "assign", "unit_id": CASE_UNIT})]
        if status in ("accepted", "resolved"):
            steps.append((handler, {"action": "accept"}))
        if status == "resolved":
            steps.append((handler, {"action": "resolve", "result": "已上门劝导，音量已调低"}))
        for who, action in steps:
            r = who.post(f"/v1/cases/{case}/actions", json=action)
            assert r.status_code == 200, r.text
        assert self.case_status(case) == status
        return case


@pytest.fixture(scope="module")
def world(stack, request):
    leaked: list = []
    callers = {role: Caller(stack.gateway, role, username, leaked)
               for role, username in USERS.items()}
    owner, operator = callers["owner"], callers["operator"]
    # The owner's report, with a photo, and its case, assigned to CASE_UNIT
    report = owner.submitted(attachments=[owner.upload()], address="望江街道始版桥社区 5幢")
    w = World(stack, callers, report, "", {}, "", leaked)
    w.case = w.case_of(report["id"])
    r = operator.post(f"/v1/cases/{w.case}/actions",
                      json={"action": "assign", "unit_id": CASE_UNIT})
    assert r.status_code == 200, r.text
    # A call taken by the operator: the caller's number must come back from nowhere
    w.phone_report = operator.submitted(channel="phone", caller_phone=CALLER_PHONE,
                                     description="来电反映：小区门口窨井盖缺失")
    w.phone_case = w.case_of(w.phone_report["id"])
    r = operator.post(f"/v1/cases/{w.phone_case}/actions",
                      json={"action": "assign", "unit_id": CASE_UNIT})
    assert r.status_code == 200, r.text
    yield w
    # Shown in every run, not only with -s: the figure the access tests are judged by.
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\naccess matrix: {TALLY['checks']} checks ({TALLY['test_access']} endpoint "
                f"x role, {TALLY['test_a_token_that_is_not_valid_is_refused_everywhere']} "
                f"bad tokens x endpoint, the rest URLs, identities, rate limit and lockout), "
                f"{TALLY['passed']} passed; {TALLY['bodies scanned']} JSON bodies scanned "
                f"for phone numbers and reporters' identities")


@pytest.fixture
def check(world, request):
    """Counts the check, and fails it if anything this test received leaked."""
    TALLY["checks"] += 1
    TALLY[request.node.originalname] += 1
    world.leaked.clear()
    yield
    assert not world.leaked, world.leaked
    TALLY["passed"] += 1


# --- what each row sends ----------------------------------------------------------------

def paged_ids(caller: Caller, path: str, wanted: str, max_pages: int = 200) -> bool:
    """Whether `wanted` is among the ids of the list at `path`, reading every page."""
    params = {"limit": 100}
    for _ in range(max_pages):
        r = caller.get(path, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        if any(item["id"] == wanted for item in page["items"]):
            return True
        if not page["next_cursor"]:
            return False
        params["cursor"] = page["next_cursor"]
    raise AssertionError(f"{path} has more than {max_pages} pages")


def token(c: Caller, w: World):
    username = c.username or "no-such-user"
    password = PASSWORD if c.username else "not-the-password"
    r = requests.post(f"{w.stack.gateway}/v1/auth/token",
                      json={"username": username, "password": password})
    c._scan(r)
    if r.status_code == 200:
        assert MASKED.match(r.json()["user"]["phone"]), r.json()["user"]
    return r


def me(c: Caller, w: World):
    r = c.get("/v1/me")
    if r.status_code == 200:
        assert r.json()["id"] == c.user["id"]
        assert MASKED.match(r.json()["phone"]), r.json()  # her own number, masked too
    return r


def upload(c: Caller, w: World):
    r = c.post("/v1/uploads", json={"content_type": "image/jpeg", "size": 2048})
    if r.status_code == 201:  # a random key: nothing in it says whose it is
        assert re.fullmatch(r"uploads/[0-9a-f]{32}\.jpg", r.json()["object_key"]), r.json()
    return r


def submit(c: Caller, w: World):
    return c.post("/v1/reports", json={"category": "hazard-facility",
                                       "description": "路灯杆歪斜，存在倒伏隐患",
                                       "location": {"lat": 30.24115, "lon": 120.18708}})


def listing(path: str, finds: tuple):
    def call(c: Caller, w: World):
        r = c.get(path)
        if r.status_code == 200:
            wanted = w.report["id"] if path == "/v1/reports" else w.case
            expected = finds[ROLES.index(c.role)]
            assert paged_ids(c, path, wanted) is expected, f"{c.role} finds it: {expected}"
        return r
    return call


def case_view(c: Caller, w: World):
    r = c.get(f"/v1/cases/{w.case}")
    if r.status_code == 200:
        shown = r.json()["reporter_ids"]
        assert shown == ([w.report["reporter_id"]] if c.role in SEES_REPORTERS | {"owner"}
                         else []), shown
    return r


def act(state: str, action: dict):
    def call(c: Caller, w: World):
        case = w.fresh_case(state)
        r = c.post(f"/v1/cases/{case}/actions", json=action)
        if r.status_code >= 400:
            assert w.case_status(case) == state, "a refused action changed the case"
        return r
    return call


# The routes of issue 3: each call gets its own rule, agenda item, project or wish.
# A harmless rule: it routes what the community default already routes there.
SPARE_RULE = {"category": "suggestion-general", "community": "comm-qiutao",
              "unit_id": "comm-qiutao", "reason_zh": "属地社区处置",
              "reason_en": "Handled by the community where it happened"}


def delete_rule(c: Caller, w: World):
    admin = w.callers["admin"]
    rule = admin.http.put(f"{admin.base}/v1/routing-rules", json=SPARE_RULE).json()
    r = c.http.delete(f"{c.base}/v1/routing-rules/{rule['id']}")
    if r.status_code >= 400:
        assert admin.http.delete(f"{admin.base}/v1/routing-rules/{rule['id']}").ok
    return r


def screened(w: World, action: dict) -> str:
    """A new case from the owner's report, moved by the operator with `action`."""
    case = w.case_of(w.callers["owner"].submitted()["id"])
    r = w.callers["operator"].post(f"/v1/cases/{case}/actions", json=action)
    assert r.status_code == 200, r.text
    return case


def escalated(w: World) -> str:
    return screened(w, {"action": "escalate_leadership", "note": "涉及多部门，提交班子会"})


def decision(c: Caller, w: World):
    case = escalated(w)
    r = c.post(f"/v1/agenda/{case}/decision", json={"decision": "no_project",
                                                    "answer": "由社区协调解决"})
    if r.status_code >= 400:
        assert w.case_status(case) == "escalated_leadership", "a refusal changed the case"
    return r


def project(w: World) -> str:
    r = w.callers["operator"].post(f"/v1/agenda/{escalated(w)}/decision", json={
        "decision": "create_project", "title": "广场隔音改造", "budget": 50000,
        "answer": "列入民生实事项目"})
    assert r.status_code == 200, r.text
    return r.json()["project"]["id"]


def update_project(c: Caller, w: World):
    project_id = project(w)
    return c.http.patch(f"{c.base}/v1/projects/{project_id}", json={"status": "in_progress"})


def wish_photo(c: Caller, w: World):
    owner = w.callers["owner"]
    case = w.case_of(owner.submitted(attachments=[owner.upload()])["id"])
    r = w.callers["operator"].post(f"/v1/cases/{case}/actions", json={"action": "publish_wish"})
    assert r.status_code == 200, r.text
    name = w.stack.scalar("SELECT attachments->0->>'key' FROM dispatch.cases WHERE id = :c",
                          c=case).rsplit("/", 1)[-1]
    return c.get(f"/v1/wishes/{case}/media/{name}", allow_redirects=False)


def claim(c: Caller, w: World):
    case = screened(w, {"action": "publish_wish"})
    r = c.post(f"/v1/wishes/{case}/claim")
    if r.status_code >= 400:
        assert w.case_status(case) == "wish"
    return r


def fulfil(c: Caller, w: World):
    case = screened(w, {"action": "publish_wish"})
    assert w.callers["patroller"].post(f"/v1/wishes/{case}/claim").status_code == 200
    r = c.post(f"/v1/wishes/{case}/fulfil", json={"note": "已上门帮忙"})
    if r.status_code >= 400:
        assert w.case_status(case) == "wish"
    return r


def feedback(c: Caller, w: World):
    case = w.fresh_case("resolved")
    r = c.post(f"/v1/cases/{case}/feedback", json={"rating": 5, "comment": "处理及时"})
    if r.status_code >= 400:
        assert w.case_status(case) == "resolved", "a refused rating changed the case"
    return r


def phone_feedback(c: Caller, w: World):
    case = w.fresh_case("resolved", phone=CALLER_PHONE)
    r = c.post(f"/v1/cases/{case}/feedback", json={"rating": 5, "comment": "来电人满意"})
    if r.status_code >= 400:
        assert w.case_status(case) == "resolved", "a refused rating changed the case"
    return r


def caller_number(c: Caller, w: World):
    """Not scanned as the other rows are: the operator's answer is the number itself. The
    check is that nobody else gets it, and nobody else's asking is recorded."""
    case = w.fresh_case("resolved", phone=CALLER_PHONE)
    callback = w.stack.scalar("SELECT id::text FROM dispatch.callbacks WHERE case_id = :c "
                              "AND status = 'pending'", c=case)
    auth = c.http.headers.get("Authorization")
    r = requests.post(f"{c.base}/v1/callbacks/{callback}/caller-number", timeout=10,
                      headers={"Authorization": auth} if auth else {})
    shown = w.stack.scalar("SELECT count(*) FROM intake.caller_number_reveals "
                           "WHERE callback_id = :b", b=callback)
    if r.status_code == 200:
        assert r.json()["phones"] == [CALLER_PHONE] and shown == 1
    else:
        assert CALLER_PHONE not in r.text and shown == 0
    return r


def extension_requested(w: World) -> tuple[str, str]:
    """A fresh assigned case, and the extension its unit's handler asked for."""
    case = w.fresh_case("assigned")
    r = w.callers["handler-of-unit"].post(f"/v1/cases/{case}/extensions",
                                          json={"hours": 4, "reason": "等待业主回家"})
    assert r.status_code == 201, r.text
    return case, r.json()["id"]


def request_extension(c: Caller, w: World):
    case = w.fresh_case("assigned")
    r = c.post(f"/v1/cases/{case}/extensions", json={"hours": 4, "reason": "等待业主回家"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT count(*) FROM dispatch.sla_extensions WHERE case_id = :c",
                              c=case) == 0, "a refused request was kept"
    return r


def decide_extension(c: Caller, w: World):
    case, extension = extension_requested(w)
    r = c.post(f"/v1/cases/{case}/extensions/{extension}/decision", json={"approve": True})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT status FROM dispatch.sla_extensions WHERE id = :e",
                              e=extension) == "pending", "a refused decision was kept"
    return r


def operators_item(w: World) -> str:
    """An inbox item for the command center: the notice of an extension request."""
    case, _ = extension_requested(w)
    return w.stack.scalar("SELECT id::text FROM dispatch.inbox_items WHERE case_id = :c AND "
                          "recipient_kind = 'role' AND recipient_id = 'operator'", c=case)


def record_callback(c: Caller, w: World):
    # A closed case in the callback queue (queued here: the sample is random-looking)
    case = w.fresh_case("resolved")
    r = w.callers["owner"].post(f"/v1/cases/{case}/feedback", json={"rating": 5})
    assert r.status_code == 200, r.text
    with w.stack.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO dispatch.callbacks (id, case_id, queued_at, status) VALUES "
            "(gen_random_uuid(), :c, now(), 'pending') ON CONFLICT DO NOTHING"), {"c": case})
    callback = w.stack.scalar("SELECT id::text FROM dispatch.callbacks WHERE case_id = :c",
                              c=case)
    r = c.post(f"/v1/callbacks/{callback}", json={"satisfied": True, "note": "满意"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT status FROM dispatch.callbacks WHERE id = :i",
                              i=callback) == "pending", "a refused record was kept"
    return r


# --- accounts (issue #19) ------------------------------------------------------------------

def _new_phone() -> str:
    return f"137{uuid.uuid4().int % 10**8:08d}"


def _elsewhere() -> dict:
    """A client address of its own (the test stack believes one proxy's X-Forwarded-For):
    the per-client code limit is not what these rows test."""
    n = uuid.uuid4().int
    return {"X-Forwarded-For": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250}"}


def _code(w: World, phone: str, purpose: str) -> str:
    before = len(w.stack.sms_sent(phone))
    r = requests.post(f"{w.stack.gateway}/v1/auth/sms-codes", headers=_elsewhere(),
                      json={"phone": phone, "purpose": purpose})
    assert r.status_code == 202, r.text
    return wait_for(lambda: (sent := w.stack.sms_sent(phone)) and len(sent) > before and sent,
                    what="the code")[-1]["code"]


def _resident(w: World) -> str:
    """A phone with a resident account, and no code asked for in the last minute."""
    phone = _new_phone()
    r = requests.post(f"{w.stack.gateway}/v1/auth/sign-up", headers=_elsewhere(), json={
        "phone": phone, "code": _code(w, phone, "sign-up"), "display_name": "居民",
        "password": "first-password"})
    assert r.status_code == 201, r.text
    with w.stack.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE identity.sms_codes SET created_at = created_at - "
                             "interval '2 min' WHERE phone = %(p)s", {"p": phone})
    return phone


def sms_code(c: Caller, w: World):
    return c.post("/v1/auth/sms-codes", headers=_elsewhere(),
                  json={"phone": _new_phone(), "purpose": "sign-up"})


def sign_up(c: Caller, w: World):
    phone = _new_phone()
    code = _code(w, phone, "sign-up")
    return c.post("/v1/auth/sign-up", headers=_elsewhere(), json={
        "phone": phone, "code": code, "display_name": "新居民", "password": "a-password"})


def code_sign_in(c: Caller, w: World):
    phone = _resident(w)
    code = _code(w, phone, "sign-in")
    return c.post("/v1/auth/code-sign-in", headers=_elsewhere(),
                  json={"phone": phone, "code": code})


def password_reset(c: Caller, w: World):
    phone = _resident(w)
    code = _code(w, phone, "reset-password")
    return c.post("/v1/auth/password-reset", headers=_elsewhere(),
                  json={"phone": phone, "code": code, "password": "second-password"})


def _staff(w: World) -> str:
    r = w.callers["admin"].post("/v1/admin/staff", json={
        "username": f"m-{uuid.uuid4().hex[:10]}", "display_name": "网格员",
        "roles": ["handler"], "unit_id": "comm-qiutao", "password": "staff-password"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def create_staff(c: Caller, w: World):
    username = f"m-{uuid.uuid4().hex[:10]}"
    r = c.post("/v1/admin/staff", json={"username": username, "display_name": "网格员",
                                        "roles": ["handler"], "unit_id": "comm-qiutao",
                                        "password": "staff-password"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT count(*) FROM identity.users WHERE username = :u",
                              u=username) == 0, "a refused creation made the account"
    return r


def update_staff(c: Caller, w: World):
    staff = _staff(w)
    r = c.http.patch(f"{c.base}/v1/admin/staff/{staff}", json={"unit_id": "comm-jinlong"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT unit_id FROM identity.users WHERE id = :u",
                              u=staff) == "comm-qiutao", "a refused change was made"
    return r


def delete_me(c: Caller, w: World):
    """Each call deletes a fresh account with the caller's roles, not the caller's own."""
    if c.username is None:
        return c.http.delete(f"{c.base}/v1/me")
    if c.role in ("owner", "other-resident"):
        r = requests.post(f"{w.stack.gateway}/v1/auth/token", headers=_elsewhere(), json={
            "username": _resident(w), "password": "first-password"})
    else:
        username = f"d-{uuid.uuid4().hex[:10]}"
        made = w.callers["admin"].post("/v1/admin/staff", json={
            "username": username, "display_name": "工作人员",
            "roles": sorted(set(c.user["roles"]) - {"resident"}),  # a patroller is both
            "unit_id": c.user["unit_id"], "password": "staff-password"})
        assert made.status_code == 201, made.text
        r = requests.post(f"{w.stack.gateway}/v1/auth/token", headers=_elsewhere(),
                          json={"username": username, "password": "staff-password"})
    assert r.status_code == 200, r.text
    me = Caller(c.base, c.role, None, w.leaked)
    me.user = r.json()["user"]
    me.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    answer = me.http.delete(f"{c.base}/v1/me")
    after = me.get("/v1/me").status_code
    assert after == (401 if answer.status_code == 200 else 200), "deleted means signed out"
    return answer


def _signed_in_as_new(c: Caller, w: World, password: str) -> Caller:
    """A fresh account with the caller's roles (a resident, or staff made by the admin),
    signed in: what changes it makes, it makes to no one the other rows sign in as."""
    if c.role in ("owner", "other-resident"):
        login = {"username": _resident(w), "password": "first-password"}
    else:
        username = f"p-{uuid.uuid4().hex[:10]}"
        made = w.callers["admin"].post("/v1/admin/staff", json={
            "username": username, "display_name": "工作人员",
            "roles": sorted(set(c.user["roles"]) - {"resident"}),
            "unit_id": c.user["unit_id"], "password": password})
        assert made.status_code == 201, made.text
        login = {"username": username, "password": password}
    r = requests.post(f"{w.stack.gateway}/v1/auth/token", headers=_elsewhere(), json=login)
    assert r.status_code == 200, r.text
    me = Caller(c.base, c.role, None, w.leaked)
    me.user = r.json()["user"]
    me.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return me


def change_password(c: Caller, w: World):
    if c.username is None:
        return c.post("/v1/me/password", json={"current_password": "x",
                                               "new_password": "a-new-password"})
    me = _signed_in_as_new(c, w, "first-password")
    r = me.post("/v1/me/password", headers=_elsewhere(),
                json={"current_password": "first-password", "new_password": "a-new-password"})
    if r.status_code == 200:  # the old session is out, the new token works
        assert me.get("/v1/me").status_code == 401
        me.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        assert me.get("/v1/me").status_code == 200
    return r


def _unit(w: World) -> str:
    unit = f"dept-m-{uuid.uuid4().hex[:10]}"
    r = w.callers["admin"].post("/v1/admin/units", json={
        "id": unit, "kind": "department", "name_zh": "临时科室", "name_en": "Spare Office"})
    assert r.status_code == 201, r.text
    return unit


def _grid(w: World) -> str:
    grid = f"grid-m-{uuid.uuid4().hex[:10]}"
    r = w.callers["admin"].post("/v1/admin/units/comm-qiutao/grids",
                                json={"id": grid, "name_zh": "临时网格"})
    assert r.status_code == 201, r.text
    return grid


def create_unit(c: Caller, w: World):
    unit = f"dept-m-{uuid.uuid4().hex[:10]}"
    r = c.post("/v1/admin/units", json={"id": unit, "kind": "department",
                                        "name_zh": "临时科室", "name_en": "Spare Office"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT count(*) FROM identity.units WHERE id = :u",
                              u=unit) == 0, "a refused creation made the unit"
    return r


def rename_unit(c: Caller, w: World):
    unit = _unit(w)
    r = c.http.patch(f"{c.base}/v1/admin/units/{unit}", json={"name_zh": "改名科室"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT name_zh FROM identity.units WHERE id = :u",
                              u=unit) == "临时科室", "a refused change was made"
    return r


def add_grid(c: Caller, w: World):
    grid = f"grid-m-{uuid.uuid4().hex[:10]}"
    r = c.post("/v1/admin/units/comm-qiutao/grids", json={"id": grid, "name_zh": "临时网格"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT count(*) FROM identity.grids WHERE id = :g",
                              g=grid) == 0, "a refused grid was added"
    return r


def rename_grid(c: Caller, w: World):
    grid = _grid(w)
    r = c.http.patch(f"{c.base}/v1/admin/units/comm-qiutao/grids/{grid}",
                     json={"name_zh": "改名网格"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT name_zh FROM identity.grids WHERE id = :g",
                              g=grid) == "临时网格", "a refused change was made"
    return r


def export(c: Caller, w: World):
    r = c.get("/v1/me/data")
    if r.status_code == 200:  # hers, and only hers
        data = r.json()
        assert data["account"]["id"] == c.user["id"]
        assert all(report["reporter_id"] == c.user["id"] for report in data["reports"]
                   if "reporter_id" in report), "an export with others' reports"
        if c.role == "owner":
            assert w.report["id"] in {report["id"] for report in data["reports"]}
    return r


def own_rewards(c: Caller, w: World):
    r = c.get("/v1/rewards", params={"limit": 100})
    if r.status_code == 200 and "resident" in c.user["roles"] and not set(
            c.user["roles"]) & {"operator", "leader", "admin"}:
        assert all(x.get("resident_id") == c.user["id"] for x in r.json()["items"]), \
            "a resident sees another's rewards"
    return r


def own_balance(c: Caller, w: World):
    r = c.get("/v1/rewards/balance")
    if r.status_code == 200:
        assert r.json()["resident_id"] == c.user["id"], "a balance not the caller's"
    return r


def proposed_reward(w: World) -> str:
    """A fresh reward proposed for the owner: her hazard report, closed on the spot."""
    report = w.callers["owner"].submitted(category="hazard-facility",
                                          description="路灯杆倾斜，随时可能倒下")
    case = w.case_of(report["id"])
    r = w.callers["operator"].post(f"/v1/cases/{case}/actions",
                                   json={"action": "close_directly", "note": "已修复"})
    assert r.status_code == 200, r.text
    return wait_for(lambda: w.stack.scalar(
        "SELECT id::text FROM rewards.rewards WHERE case_id = :c", c=case),
        what="the proposed reward")


def approve_reward(c: Caller, w: World):
    reward = proposed_reward(w)
    r = c.post(f"/v1/rewards/{reward}/actions", json={"action": "approve"})
    if r.status_code >= 400:
        assert w.stack.scalar("SELECT status FROM rewards.rewards WHERE id = :r",
                              r=reward) == "proposed", "a refused approval changed it"
    return r


def pending_payout(w: World) -> str:
    """A fresh pending payout of the owner's balance (an approved reward, batched)."""
    reward = proposed_reward(w)
    r = w.callers["operator"].post(f"/v1/rewards/{reward}/actions", json={"action": "approve"})
    assert r.status_code == 200, r.text
    batch = w.callers["admin"].post("/v1/payouts")
    assert batch.status_code == 201, batch.text
    return w.stack.scalar("SELECT id::text FROM rewards.payouts WHERE batch_id = :b AND "
                          "resident_id = :o", b=batch.json()["batch_id"],
                          o=w.callers["owner"].user["id"])


def refuse_payout(c: Caller, w: World):
    payout = pending_payout(w)
    return c.post(f"/v1/payouts/{payout}/actions", json={"action": "refuse",
                                                         "note": "信息待核实"})


def export_payouts(c: Caller, w: World):
    r = c.get("/v1/payouts/export")
    if r.status_code == 200:  # finance's CSV: a spreadsheet opens the Chinese intact
        assert r.content.startswith("\ufeff".encode()) and "兑付编号" in r.text
    return r


def unflag(c: Caller, w: World):
    flagged = f"resident-{uuid.uuid4().hex[:8]}"
    r = w.callers["operator"].http.put(f"{c.base}/v1/rewards/flags/{flagged}",
                                       json={"reason": "核查"})
    assert r.status_code == 200, r.text
    return c.http.delete(f"{c.base}/v1/rewards/flags/{flagged}")


def leaderboard(c: Caller, w: World):
    r = c.get("/v1/leaderboard", params={"period": "year"})
    if r.status_code == 200:  # names or masks, never ids
        assert all("resident_id" not in row for row in r.json()["items"])
    return r


ENDPOINTS = {
    "GET /v1/openapi.json": lambda c, w: c.get("/v1/openapi.json"),
    "GET /health/live": lambda c, w: c.get("/health/live"),
    "GET /health/ready": lambda c, w: c.get("/health/ready"),
    "GET /metrics": lambda c, w: c.get("/metrics"),
    "POST /v1/auth/token": token,
    "GET /v1/me": me,
    "GET /v1/categories": lambda c, w: c.get("/v1/categories"),
    "GET /v1/units": lambda c, w: c.get("/v1/units"),
    "POST /v1/uploads": upload,
    "POST /v1/reports": submit,
    "GET /v1/reports": listing("/v1/reports", FINDS["GET /v1/reports"]),
    "GET /v1/reports/{report}": lambda c, w: c.get(f"/v1/reports/{w.report['id']}"),
    "GET /v1/reports/{phone_report}": lambda c, w: c.get(
        f"/v1/reports/{w.phone_report['id']}"),
    "GET /v1/cases": listing("/v1/cases", FINDS["GET /v1/cases"]),
    "GET /v1/cases/{case}": case_view,
    "GET /v1/cases/{phone_case}": lambda c, w: c.get(f"/v1/cases/{w.phone_case}"),
    "GET /v1/cases/{case}/timeline": lambda c, w: c.get(f"/v1/cases/{w.case}/timeline"),
    "GET /v1/reports/{report}/media/{photo}": lambda c, w: c.get(
        w.report["attachments"][0]["url"], allow_redirects=False),
    "GET /v1/cases/{case}/media/{photo}": lambda c, w: c.get(
        w.report["attachments"][0]["url"].replace(f"/v1/reports/{w.report['id']}/",
                                                  f"/v1/cases/{w.case}/"),
        allow_redirects=False),
    "POST /v1/cases/{assigned}/actions assign": act(
        "assigned", {"action": "assign", "unit_id": CASE_UNIT}),
    "POST /v1/cases/{assigned}/actions accept": act("assigned", {"action": "accept"}),
    "POST /v1/cases/{accepted}/actions resolve": act(
        "accepted", {"action": "resolve", "result": "已协调物业处理"}),
    "POST /v1/cases/{resolved}/feedback": feedback,
    "POST /v1/cases/{phone_resolved}/feedback": phone_feedback,
    "GET /v1/cases/{case}/duplicates": lambda c, w: c.get(f"/v1/cases/{w.case}/duplicates"),
    "GET /v1/routing-rules": lambda c, w: c.get("/v1/routing-rules"),
    "PUT /v1/routing-rules": lambda c, w: c.http.put(f"{c.base}/v1/routing-rules",
                                                     json=SPARE_RULE),
    "DELETE /v1/routing-rules/{rule}": delete_rule,
    "GET /v1/agenda": lambda c, w: c.get("/v1/agenda"),
    "POST /v1/agenda/{escalated}/decision": decision,
    "GET /v1/projects": lambda c, w: c.get("/v1/projects"),
    "GET /v1/projects/{project}": lambda c, w: c.get(f"/v1/projects/{project(w)}"),
    "PATCH /v1/projects/{project}": update_project,
    "GET /v1/wishes": lambda c, w: c.get("/v1/wishes"),
    "GET /v1/wishes/{wish}/media/{photo}": wish_photo,
    "POST /v1/wishes/{wish}/claim": claim,
    "POST /v1/wishes/{claimed}/fulfil": fulfil,
    "GET /open311/v2/discovery.{fmt}": lambda c, w: c.get("/open311/v2/discovery.json"),
    "GET /open311/v2/services.{fmt}": lambda c, w: c.get("/open311/v2/services.xml"),
    "GET /open311/v2/services/{code}.{fmt}": lambda c, w: c.get(
        "/open311/v2/services/hazard-facility.json"),
    "POST /open311/v2/requests.{fmt}": lambda c, w: c.post("/open311/v2/requests.json", data={
        "service_code": "hazard-facility", "lat": 30.24115, "long": 120.18708,
        "description": "路灯杆歪斜，存在倒伏隐患", "attribute[facility]": "streetlight"}),
    "GET /open311/v2/requests.{fmt}": lambda c, w: c.get("/open311/v2/requests.json"),
    "GET /open311/v2/requests/{phone_report}.{fmt}": lambda c, w: c.get(
        f"/open311/v2/requests/{w.phone_report['id']}.json"),
    "GET /open311/v2/tokens/{report}.{fmt}": lambda c, w: c.get(
        f"/open311/v2/tokens/{w.report['id']}.json"),
    "GET /open311/v2/servicerequestupdates.{fmt}": lambda c, w: c.get(
        "/open311/v2/servicerequestupdates.json"),
    "GET /v1/inbox": lambda c, w: c.get("/v1/inbox"),
    "POST /v1/inbox/{operators_item}/read": lambda c, w: c.post(
        f"/v1/inbox/{operators_item(w)}/read"),
    "POST /v1/cases/{assigned}/extensions": request_extension,
    "POST /v1/cases/{assigned}/extensions/{requested}/decision": decide_extension,
    "GET /v1/callbacks": lambda c, w: c.get("/v1/callbacks"),
    "POST /v1/callbacks/{queued}": record_callback,
    "POST /v1/callbacks/{phone_queued}/caller-number": caller_number,
    "GET /v1/sla/policies": lambda c, w: c.get("/v1/sla/policies",
                                               params={"category": "dispute-noise"}),
    # the seeded hours of suggestion-general/low, set again: nothing changes for others
    "PUT /v1/sla/policies/{category}/{priority}": lambda c, w: c.http.put(
        f"{c.base}/v1/sla/policies/suggestion-general/low",
        json={"accept_hours": 48, "resolve_hours": 480, "yellow_at": 0.75}),
    "GET /v1/supervision/report": lambda c, w: c.get("/v1/supervision/report"),
    "GET /v1/cases/{case}/trail/verify": lambda c, w: c.get(f"/v1/cases/{w.case}/trail/verify"),
    "POST /v1/auth/sms-codes": sms_code,
    "POST /v1/auth/sign-up": sign_up,
    "POST /v1/auth/code-sign-in": code_sign_in,
    "POST /v1/auth/password-reset": password_reset,
    "POST /v1/admin/staff": create_staff,
    "PATCH /v1/admin/staff/{staff}": update_staff,
    "GET /v1/admin/staff/{staff}/changes": lambda c, w: c.get(
        f"/v1/admin/staff/{_staff(w)}/changes"),
    "GET /v1/me/data": export,
    "DELETE /v1/me": delete_me,
    "POST /v1/me/password": change_password,
    "GET /v1/admin/units": lambda c, w: c.get("/v1/admin/units"),
    "POST /v1/admin/units": create_unit,
    "PATCH /v1/admin/units/{unit}": rename_unit,
    "POST /v1/admin/units/{community}/grids": add_grid,
    "PATCH /v1/admin/units/{community}/grids/{grid}": rename_grid,
    "GET /v1/admin/units/{unit}/changes": lambda c, w: c.get(
        f"/v1/admin/units/{_unit(w)}/changes"),
    "GET /v1/rewards": own_rewards,
    "GET /v1/rewards/balance": own_balance,
    "POST /v1/rewards/{proposed}/actions approve": approve_reward,
    "GET /v1/rewards/rules": lambda c, w: c.get("/v1/rewards/rules"),
    # the seeded range of security/low, set again: nothing changes for others
    "PUT /v1/rewards/rules/{reward_class}/{priority}": lambda c, w: c.http.put(
        f"{c.base}/v1/rewards/rules/security/low", json={"min_fen": 2500, "max_fen": 25000}),
    "GET /v1/rewards/rules/changes": lambda c, w: c.get("/v1/rewards/rules/changes"),
    "POST /v1/payouts": lambda c, w: c.post("/v1/payouts"),
    "GET /v1/payouts": lambda c, w: c.get("/v1/payouts"),
    "POST /v1/payouts/{pending}/actions refuse": refuse_payout,
    "GET /v1/payouts/export": export_payouts,
    "GET /v1/leaderboard": leaderboard,
    "GET /v1/leaderboard/top-reporters": lambda c, w: c.get("/v1/leaderboard/top-reporters"),
    # a made-up reporter: flagging a real one would hold the approve rows' rewards
    "PUT /v1/rewards/flags/{resident}": lambda c, w: c.http.put(
        f"{c.base}/v1/rewards/flags/resident-matrix-flag", json={"reason": "核查"}),
    "DELETE /v1/rewards/flags/{flagged}": unflag,
}


def assert_status(r: requests.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    if status >= 400 and urlsplit(r.url).path.startswith("/open311/"):
        # GeoReport v2's own error body (test_open311.py checks it in full)
        assert [e["code"] for e in r.json()] == [status], r.text
    elif status >= 400:
        assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
        assert r.json()["status"] == status


# --- the matrix ---------------------------------------------------------------------------

def test_the_matrix_has_a_row_for_every_gateway_route_and_a_cell_for_every_role():
    served = set()
    for name in dir(GatewayService):
        for entrypoint in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()) or ():
            if hasattr(entrypoint, "url"):
                path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "{}", entrypoint.url)
                served.add(f"{entrypoint.method} {path}")
    rows = {re.sub(r"\{[^}]+\}", "{}", endpoint.split(" ")[0] + " " + endpoint.split(" ")[1])
            for endpoint in MATRIX}
    assert served == rows, f"not in the matrix: {served - rows}; not served: {rows - served}"
    assert set(MATRIX) == set(ENDPOINTS)
    assert all(len(statuses) == len(ROLES) for statuses in MATRIX.values())


@pytest.mark.parametrize("endpoint, role, status", ROWS,
                         ids=[f"{e} | {r} -> {s}" for e, r, s in ROWS])
def test_access(world, check, endpoint, role, status):
    # Given a user in this role; when they call the endpoint; then they get the status
    r = ENDPOINTS[endpoint](world.callers[role], world)
    assert_status(r, status)


# --- tokens that are not ours, or not any more -------------------------------------------

BAD_TOKENS = {"expired": (expired, "token-expired"), "forged": (forged, "token-invalid"),
              "alg-none": (unsigned, "token-invalid"),
              "hs512-right-secret": (hs512_right_secret, "token-invalid"),
              "roles-edited": (roles_edited_after_signing, "token-invalid")}
SIGNED_IN = [e for e, statuses in MATRIX.items() if statuses[0] == 401
             and e != "POST /v1/auth/token"]
TOKEN_ROWS = [(endpoint, kind) for endpoint in SIGNED_IN for kind in BAD_TOKENS]


@pytest.mark.parametrize("endpoint, kind", TOKEN_ROWS,
                         ids=[f"{e} | {k} token -> 401" for e, k in TOKEN_ROWS])
def test_a_token_that_is_not_valid_is_refused_everywhere(stack, world, check, endpoint,
                                                         kind):
    # Given the admin's claims in a token we did not issue as it is, or not any more
    make, code = BAD_TOKENS[kind]
    caller = Caller(stack.gateway, "admin", None, world.leaked)
    bad = make(world.callers["admin"].user, stack.st.env["JWT_SECRET"])
    caller.http.headers["Authorization"] = f"Bearer {bad}"
    caller.user = None
    # When it is used; then it is refused, as if no one had signed in
    r = ENDPOINTS[endpoint](caller, world)
    assert_status(r, 401)
    assert r.json()["type"] == f"/problems/{code}"
    assert r.headers.get("WWW-Authenticate") == "Bearer"


# --- presigned upload URLs ----------------------------------------------------------------

def test_an_upload_url_lives_at_most_fifteen_minutes(world, check):
    ticket = world.callers["owner"].post(
        "/v1/uploads", json={"content_type": "image/jpeg", "size": len(JPEG)}).json()
    policy = json.loads(base64.b64decode(ticket["fields"]["policy"]))
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=900)
    assert ticket["expires_in"] <= 900


def test_an_upload_url_opens_only_its_own_object(world, check):
    # Given a ticket signed for one object key
    owner = world.callers["owner"]
    ticket = owner.post("/v1/uploads", json={"content_type": "image/jpeg",
                                             "size": len(JPEG)}).json()
    # When its signature is used to write another key
    r = post_upload(ticket, JPEG, key=f"uploads/{uuid.uuid4().hex}.jpg")
    # Then the store refuses it, and the ticket still works for its own key
    assert r.status_code == 403, r.text
    assert post_upload(ticket, JPEG).status_code == 204


def test_an_uploaded_object_cannot_be_read_without_a_signature(world, check):
    key = world.callers["owner"].upload()
    bucket = world.callers["owner"].post(
        "/v1/uploads", json={"content_type": "image/jpeg", "size": 10}).json()["upload_url"]
    r = requests.get(f"{bucket}/{key}")
    assert r.status_code == 403, r.status_code


# --- who reported: nobody else's business -------------------------------------------------

def test_a_handler_sees_the_rating_but_not_who_gave_it(world, check):
    # Given a resolved case of the handler's unit that its reporter then rated
    case = world.fresh_case("resolved")
    r = world.callers["owner"].post(f"/v1/cases/{case}/feedback", json={"rating": 2})
    assert r.status_code == 200, r.text
    # When the handler reads the case and its trail
    handler = world.callers["handler-of-unit"]
    shown = handler.get(f"/v1/cases/{case}").json()
    trail = handler.get(f"/v1/cases/{case}/timeline").json()["entries"]
    # Then the rating is there, the reporter is not
    assert shown["rating"] == 2 and shown["reporter_ids"] == []
    rated = [e for e in trail if e["actor_role"] == "reporter"]
    assert [e["action"] for e in rated] == ["rate_unsatisfied"]
    assert rated[0]["actor_id"] is None
    # while the command center still sees who it was
    operator_trail = world.callers["operator"].get(f"/v1/cases/{case}/timeline").json()
    assert [e["actor_id"] for e in operator_trail["entries"]
            if e["actor_role"] == "reporter"] == [world.report["reporter_id"]]


def test_two_residents_on_one_case_each_see_only_themselves(world, check):
    # Given a case two residents reported (merged: the same problem, reported twice)
    case = world.fresh_case("assigned")
    other = world.callers["other-resident"]
    with world.stack.engine.begin() as conn:
        conn.execute(sa.text("UPDATE dispatch.cases SET reporter_ids = reporter_ids || "
                             "CAST(:r AS varchar) WHERE id = :c"),
                     {"r": other.user["id"], "c": case})
    # When each reads it, then each sees herself and not the other
    for caller in (world.callers["owner"], other):
        r = caller.get(f"/v1/cases/{case}")
        assert r.status_code == 200, r.text
        assert r.json()["reporter_ids"] == [caller.user["id"]]
        listed = [c for c in caller.get("/v1/cases", params={"status": "assigned",
                                                             "limit": 100}).json()["items"]
                  if c["id"] == case]
        assert [c["reporter_ids"] for c in listed] in ([], [[caller.user["id"]]])
    # And the command center sees both
    shown = world.callers["operator"].get(f"/v1/cases/{case}").json()["reporter_ids"]
    assert shown == [world.report["reporter_id"], other.user["id"]]


def test_a_phone_callers_number_is_returned_to_no_one(world, check):
    # The operator who took the call and the command center see the report with its caller
    # id, the unit's leader without it, the handler the case without it; the number stays
    # in intake (the scan of every body checks the rest).
    for role in ("operator", "admin", "leader"):
        report = world.callers[role].get(f"/v1/reports/{world.phone_report['id']}").json()
        assert CALLER_PHONE not in json.dumps(report)
        if role == "leader":
            assert report["reporter_id"] is None
        else:
            assert report["reporter_id"].startswith("caller-")
    case = world.callers["handler-of-unit"].get(f"/v1/cases/{world.phone_case}").json()
    assert CALLER_PHONE not in json.dumps(case) and case["reporter_ids"] == []


# --- sign-in throttling (per client, never an account locked for everyone) -----------------

def sign_in(stack, username: str, password: str, client: str = "127.0.0.1"
            ) -> requests.Response:
    # The test stack believes one proxy (TRUSTED_PROXIES=1): X-Forwarded-For plays the client.
    return requests.post(f"{stack.gateway}/v1/auth/token",
                         json={"username": username, "password": password},
                         headers={"X-Forwarded-For": client}, timeout=30)


def assert_throttled(r: requests.Response) -> dict:
    assert_status(r, 429)
    problem = r.json()
    assert problem["type"] == "/problems/sign-in-throttled"
    assert 0 < problem["retry_after_s"] <= 900
    assert r.headers["Retry-After"] == str(problem["retry_after_s"])
    assert re.search(r"[\u3400-\u9fff]", problem["detail_zh"])
    assert "锁定" not in problem["detail_zh"] and "locked" not in problem["detail"]
    return problem


def test_five_wrong_passwords_throttle_that_client_and_not_the_account(stack, world, check):
    # Given a user no other test signs in as, and a stranger's address
    username, stranger = "gridleader-qiutao-1", "203.0.113.11"
    # When five wrong passwords come from the stranger, each is just wrong
    for attempt in range(5):
        r = sign_in(stack, username, f"guess-{attempt}", stranger)
        assert_status(r, 401)
        assert r.json()["type"] == "/problems/bad-credentials"
    # Then the stranger is throttled, even with the right password
    assert_throttled(sign_in(stack, username, PASSWORD, stranger))
    # And the owner, from her own phone, signs in as usual
    assert_status(sign_in(stack, username, PASSWORD, "198.51.100.11"), 200)


def test_a_successful_sign_in_resets_the_count(stack, world, check):
    username, phone = "gridleader-jinlong-1", "198.51.100.12"
    for attempt in range(4):
        assert sign_in(stack, username, f"guess-{attempt}", phone).status_code == 401
    assert sign_in(stack, username, PASSWORD, phone).status_code == 200
    for attempt in range(4):
        assert sign_in(stack, username, f"again-{attempt}", phone).status_code == 401
    assert sign_in(stack, username, PASSWORD, phone).status_code == 200


def test_a_made_up_username_answers_exactly_like_a_real_one(stack, world, check):
    # Given a username that exists and one that does not, both unused so far
    real, made_up = "gridleader-wujiang-1", f"nobody-{uuid.uuid4().hex[:8]}"
    client = "203.0.113.13"
    # When each gets five wrong passwords, the answers are the same
    for attempt in range(5):
        a, b = sign_in(stack, real, f"guess-{attempt}", client), \
            sign_in(stack, made_up, f"guess-{attempt}", client)
        assert (a.status_code, a.json()) == (b.status_code, b.json()) == (401, a.json())
    # And then both are throttled alike: nothing tells which account exists
    throttled_real = assert_throttled(sign_in(stack, real, PASSWORD, client))
    throttled_made_up = assert_throttled(sign_in(stack, made_up, PASSWORD, client))
    assert {k: v for k, v in throttled_real.items() if k != "retry_after_s"} == \
        {k: v for k, v in throttled_made_up.items() if k != "retry_after_s"}
    # And nothing was written for the made-up name
    assert stack.scalar("SELECT count(*) FROM identity.users WHERE username = :u",
                        u=made_up) == 0


# --- report rate limit (last: it restarts the gateway with a tight limit) ---------------

@pytest.fixture
def tight_limit(stack):
    # 10 at once, then 1 a minute: the 11th of a burst is refused whatever the timing
    stack.restart("gateway", REPORT_BURST="10", REPORT_RATE_PER_MIN="1")
    yield
    stack.restart("gateway")


def test_the_eleventh_report_of_a_burst_is_refused_with_when_to_retry(stack, world, check,
                                                                       tight_limit):
    # Given a resident on a gateway allowing a burst of 10
    resident = Caller(stack.gateway, "other-resident", USERS["other-resident"], world.leaked)
    body = {"category": "hazard-facility", "description": "小区健身器材损坏，存在安全隐患",
            "location": {"lat": 30.24115, "lon": 120.18708}}
    # When she submits 11 reports in a row
    answers = [resident.post("/v1/reports", json=body) for _ in range(11)]
    # Then the first 10 are accepted and the 11th is told when to come back
    assert [a.status_code for a in answers[:10]] == [201] * 10
    r = answers[10]
    assert_status(r, 429)
    problem = r.json()
    assert problem["type"] == "/problems/rate-limited"
    assert problem["retry_after_s"] >= 1
    assert r.headers["Retry-After"] == str(problem["retry_after_s"])
    assert re.search(r"[\u3400-\u9fff]", problem["detail_zh"])
    # And the limit is hers alone: another user is not held back
    assert world.callers["patroller"].post("/v1/reports", json=body).status_code == 201
