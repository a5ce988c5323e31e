"""Issue #10, findings 5, 7 and 9 and the partner limit of 10, against the real stack:
tokens follow the account as it is now; bodies too large, too deep, and cursors out of
range are refused as problems before they cost anything; sign-in throttling slows the
client that fails, never the account's owner, and refuses before hashing; a partner
flooding partners.inbound gets its surplus back.

The module restarts the gateway with tight sign-in limits and a 1 s account cache (and
intake with a tight partner limit) and restores both at the end. The demo accounts other
tests use are left alone: each test makes its own account (a copy of a demo one).
"""
from __future__ import annotations

import json
import statistics
import time
import uuid

import pytest
import requests
import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from gateway import auth
from minqing_kernel.pagination import encode_cursor
from tests.e2e.test_partner_platform import Partner, report_data
from tests.fixtures import PASSWORD, ROOT, TEST_AMQP, wait_for

pytestmark = pytest.mark.integration

CACHE_S = 1
CLIENT_BURST = 5


@pytest.fixture(scope="module")
def tight(stack):
    stack.restart("gateway", TOKEN_CHECK_TTL_S=str(CACHE_S),
                  LOGIN_CLIENT_BURST=str(CLIENT_BURST), LOGIN_CLIENT_RATE_PER_MIN="1")
    yield stack
    stack.restart("gateway")


@pytest.fixture(scope="module")
def identity(stack):
    with ClusterRpcProxy({"AMQP_URI": TEST_AMQP}, timeout=30) as rpc:
        yield rpc.identity


def new_client() -> str:
    """An address of our own (the test stack believes one proxy's X-Forwarded-For)."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def new_account(stack, roles: list[str], unit: str | None = None) -> str:
    """A fresh account with the demo password (its hash copied from a demo user)."""
    username = f"t-{uuid.uuid4().hex[:10]}"
    with stack.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO identity.users (id, username, display_name, password_hash, roles, "
            "unit_id) SELECT %(u)s, %(u)s, '测试', password_hash, %(r)s, %(unit)s "
            "FROM identity.users WHERE id = 'resident-zhang'",
            {"u": username, "r": roles, "unit": unit})
    return username


def sign_in(stack, username: str, password: str = PASSWORD, client: str | None = None,
            **kw) -> requests.Response:
    return requests.post(f"{stack.gateway}/v1/auth/token",
                         json={"username": username, "password": password},
                         headers={"X-Forwarded-For": client or new_client()}, timeout=30, **kw)


def session_of(stack, username: str) -> requests.Session:
    r = sign_in(stack, username)
    assert r.status_code == 200, r.text
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return s


def problem_type(r: requests.Response) -> str:
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.text[:300]
    return r.json()["type"]


def refused_within_cache_time(stack, session, path: str = "/v1/me") -> requests.Response:
    # (a list: a 401 Response is falsy)
    return wait_for(lambda: (r := session.get(stack.gateway + path)).status_code == 401 and [r],
                    timeout=CACHE_S + 10, what=f"{path} to refuse the token")[0]


# --- finding 5: tokens follow the account -------------------------------------------------

def test_a_demoted_operators_token_loses_operator_access_within_the_cache_time(
        tight, identity):
    # Given an operator signed in, who can read the routing rules
    username = new_account(tight, ["operator"], "command-center")
    operator = session_of(tight, username)
    assert operator.get(tight.gateway + "/v1/routing-rules").status_code == 200
    # When identity makes her a resident
    identity.change_roles(username, ["resident"])
    # Then within the cache time her old token is refused
    r = refused_within_cache_time(tight, operator, "/v1/routing-rules")
    assert problem_type(r) == "/problems/token-revoked"
    # And signing in again gives a resident's token, without operator access
    again = session_of(tight, username)
    r = again.get(tight.gateway + "/v1/routing-rules")
    assert r.status_code == 403 and problem_type(r) == "/problems/role-required"


def test_roles_taken_away_in_the_accounts_table_stop_working_within_the_cache_time(tight):
    # Given an operator signed in
    username = new_account(tight, ["operator"], "command-center")
    operator = session_of(tight, username)
    assert operator.get(tight.gateway + "/v1/routing-rules").status_code == 200
    # When her roles are changed where identity keeps them (no version bump)
    with tight.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE identity.users SET roles = '{resident}' WHERE id = %(u)s",
                             {"u": username})
    # Then the gateway acts on identity's roles, not the token's, within the cache time
    r = wait_for(lambda: (r := operator.get(tight.gateway + "/v1/routing-rules")
                          ).status_code == 403 and [r], timeout=CACHE_S + 10,
                 what="operator access to go")[0]
    assert problem_type(r) == "/problems/role-required"


def test_a_handler_moved_to_another_unit_acts_for_the_new_unit_only(tight, identity):
    username = new_account(tight, ["handler"], "comm-shibanqiao")
    handler = session_of(tight, username)
    identity.move_unit(username, "comm-jinjiang")
    refused_within_cache_time(tight, handler)
    assert session_of(tight, username).get(tight.gateway + "/v1/me").json()["unit_id"] == \
        "comm-jinjiang"


def test_a_deactivated_accounts_token_is_refused_and_it_cannot_sign_in(tight, identity):
    username = new_account(tight, ["resident"])
    resident = session_of(tight, username)
    identity.deactivate(username)
    assert problem_type(refused_within_cache_time(tight, resident)) == "/problems/token-revoked"
    r = sign_in(tight, username)
    assert r.status_code == 403 and problem_type(r) == "/problems/account-deactivated"


def test_a_deleted_accounts_token_is_refused(tight):
    username = new_account(tight, ["resident"])
    resident = session_of(tight, username)
    with tight.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM identity.users WHERE id = %(u)s", {"u": username})
    assert problem_type(refused_within_cache_time(tight, resident)) == "/problems/token-revoked"


def test_a_locked_accounts_token_is_refused_and_it_cannot_sign_in_until_unlocked(
        tight, identity):
    username = new_account(tight, ["handler"], "comm-shibanqiao")
    handler = session_of(tight, username)
    identity.lock_account(username, 600)
    assert problem_type(refused_within_cache_time(tight, handler)) == "/problems/token-revoked"
    r = sign_in(tight, username)
    assert r.status_code == 403 and problem_type(r) == "/problems/account-locked"
    identity.unlock_account(username)
    assert sign_in(tight, username).status_code == 200


def test_signing_out_everywhere_refuses_every_earlier_token(tight, identity):
    username = new_account(tight, ["resident"])
    phone, tablet = session_of(tight, username), session_of(tight, username)
    identity.revoke_sessions(username)
    refused_within_cache_time(tight, phone)
    refused_within_cache_time(tight, tablet)
    assert session_of(tight, username).get(tight.gateway + "/v1/me").status_code == 200


def test_the_added_latency_of_the_account_check(tight, identity):
    """Not an assertion on time (the house rules): the figures, printed, for the report.
    The old path verified the token only; the new one adds a cache lookup, and on a miss
    (once per user per TOKEN_CHECK_TTL_S) one identity RPC."""
    username = new_account(tight, ["resident"])
    token = sign_in(tight, username).json()["access_token"]
    header = f"Bearer {token}"
    secret = tight.st.env["JWT_SECRET"]
    state = identity.account_state(username)
    states = auth.AccountStates(ttl_s=3600)
    states.get(username, lambda u: state)
    n = 2000

    def median_us(call) -> float:
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1e6)
        return statistics.median(samples)
    old = median_us(lambda: auth.claims_from(header, secret))
    hit = median_us(lambda: auth.actor_from(auth.claims_from(header, secret),
                                            states.get(username, lambda u: state)))
    rpc = [0.0] * 200
    for i in range(len(rpc)):
        started = time.perf_counter()
        identity.account_state(username)
        rpc[i] = (time.perf_counter() - started) * 1e3
    session = requests.Session()
    session.headers["Authorization"] = header
    http = []
    for _ in range(200):
        started = time.perf_counter()
        assert session.get(tight.gateway + "/v1/categories").status_code == 200
        http.append((time.perf_counter() - started) * 1e3)
    print(f"\ntoken check, median of {n}: old path (verify only) {old:.1f} us; new path, "
          f"cache hit {hit:.1f} us (+{hit - old:.1f} us); cache miss adds one "
          f"identity.account_state RPC: median {statistics.median(rpc):.2f} ms of 200, "
          f"at most once per user per {CACHE_S} s here (5 s by default); "
          f"GET /v1/categories end to end: median {statistics.median(http):.2f} ms of 200")
    assert hit > 0 and old > 0


# --- finding 7: limits before parsing ------------------------------------------------------

def post_large(url: str, **kw) -> requests.Response:
    started = time.perf_counter()
    r = requests.post(url, timeout=60, **kw)
    print(f"\n{url}: {r.status_code} after {time.perf_counter() - started:.3f} s")
    return r


def test_ten_megabytes_of_json_to_sign_in_are_refused_unread_with_413(tight):
    big = json.dumps({"username": "resident-zhang", "password": "x" * 10_000_000})
    refused = tight.metric("gateway", "minqing_http_requests_refused_total",
                           route="/v1/auth/token", reason="body-too-large")
    r = post_large(f"{tight.gateway}/v1/auth/token", data=big,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and problem_type(r) == "/problems/body-too-large"
    assert tight.metric("gateway", "minqing_http_requests_refused_total",
                        route="/v1/auth/token", reason="body-too-large") == refused + 1


def test_a_ten_megabyte_open311_form_is_refused_with_413(tight):
    form = {"api_key": "minqing-open311-demo-key", "service_code": "hazard-facility",
            "lat": "30.24115", "long": "120.18708", "description": "x" * 10_000_000}
    r = post_large(f"{tight.gateway}/open311/v2/requests.json", data=form)
    assert r.status_code == 413 and problem_type(r) == "/problems/body-too-large"


def test_a_body_under_the_limit_is_still_read(tight):
    r = requests.post(f"{tight.gateway}/v1/auth/token", timeout=30,
                      json={"username": "nobody", "password": "x" * 150},
                      headers={"X-Forwarded-For": new_client()})
    assert r.status_code == 401


@pytest.mark.parametrize("path", ["/v1/auth/token", "/v1/reports"])
def test_json_nested_a_thousand_deep_is_a_400_problem(tight, path):
    resident = session_of(tight, new_account(tight, ["resident"]))
    deep = '{"username": ' + "[" * 1000 + "]" * 1000 + "}"
    r = resident.post(tight.gateway + path, data=deep,
                      headers={"Content-Type": "application/json",
                               "X-Forwarded-For": new_client()})
    assert r.status_code == 400 and problem_type(r) == "/problems/json-too-deep"


def list_endpoints() -> list[str]:
    doc = yaml.safe_load((ROOT / "contracts" / "openapi.yaml").read_text(encoding="utf-8"))
    params = doc["components"]["parameters"]
    found = []
    for path, item in doc["paths"].items():
        op = item.get("get")
        if not op or "{" in path or not path.startswith("/v1/"):
            continue
        names = [params[p["$ref"].rsplit("/", 1)[1]]["name"] if "$ref" in p else p["name"]
                 for p in op.get("parameters", [])]
        if "cursor" in names:
            found.append(path)
    return found


@pytest.mark.parametrize("cursor", ["99999999999999999999", encode_cursor(10**20),
                                    encode_cursor(2**63), encode_cursor(-1)],
                         ids=["raw-digits", "beyond-bigint", "bigint-plus-one", "negative"])
def test_a_cursor_out_of_range_is_a_400_on_every_list_endpoint(tight, cursor):
    # every list's reader: finance's lists (payouts, rule changes) are the admin's
    operator = session_of(tight, new_account(tight, ["operator", "patroller", "admin"],
                                             "command-center"))
    endpoints = list_endpoints()
    assert len(endpoints) >= 7, endpoints
    answers = {path: operator.get(tight.gateway + path, params={"cursor": cursor})
               for path in endpoints}
    assert {p: (r.status_code, r.json().get("type")) for p, r in answers.items()} == \
        {p: (400, "/problems/bad-cursor") for p in endpoints}


# --- finding 9: sign-in throttling ----------------------------------------------------------

def test_a_strangers_failures_from_one_client_do_not_stop_the_resident_from_another(tight):
    username, stranger = new_account(tight, ["resident"]), new_client()
    for attempt in range(5):
        assert sign_in(tight, username, f"guess-{attempt}", stranger).status_code == 401
    r = sign_in(tight, username, PASSWORD, stranger)
    assert r.status_code == 429 and problem_type(r) == "/problems/sign-in-throttled"
    assert "locked" not in r.json()["detail"] and "锁定" not in r.json()["detail_zh"]
    assert sign_in(tight, username, PASSWORD, new_client()).status_code == 200


def authenticate_calls(stack) -> float:
    return stack.metric("identity", "minqing_entrypoint_seconds_count",
                        entrypoint="authenticate")


def test_past_its_burst_a_clients_attempt_is_throttled_without_reaching_identity(tight):
    # Given a client that used its burst on made-up names
    sprayer = new_client()
    for n in range(CLIENT_BURST):
        assert sign_in(tight, f"nobody-{n}-{uuid.uuid4().hex[:6]}", "x", sprayer
                       ).status_code == 401
    hashed = wait_for(lambda: authenticate_calls(tight) or None, what="identity's count")
    throttled = tight.metric("gateway", "minqing_signins_throttled_total", scope="client")
    # When it tries once more
    r = sign_in(tight, f"nobody-{uuid.uuid4().hex[:6]}", "x", sprayer)
    # Then it is throttled, counted, and identity never saw it (no password was hashed)
    assert r.status_code == 429 and problem_type(r) == "/problems/sign-in-throttled"
    assert int(r.headers["Retry-After"]) >= 1
    assert tight.metric("gateway", "minqing_signins_throttled_total",
                        scope="client") == throttled + 1
    assert authenticate_calls(tight) == hashed
    # And another client is not affected
    assert sign_in(tight, "resident-zhang", PASSWORD, new_client()).status_code == 200


# --- finding 10: partner reports over RabbitMQ are rate-limited -----------------------------

@pytest.fixture
def tight_partner_limit(stack):
    stack.restart("intake", PARTNER_REPORT_BURST="3", PARTNER_REPORT_RATE_PER_MIN="1")
    yield
    stack.restart("intake")


def test_a_partner_flooding_the_inbound_exchange_gets_its_surplus_back(
        stack, partner_user, tight_partner_limit):
    partner = Partner(*partner_user("district_flood"))
    try:
        marker = uuid.uuid4().hex
        sent = [partner.report(report_data(f"{marker}-{n}")) for n in range(6)]
        # Then three are accepted and three come back, saying why in both languages
        back = []
        for _ in range(3):
            message, _ = partner.take(partner.queue("rejected"),
                                      lambda m, ce: marker.encode() in m.body)
            assert message.headers["x-minqing-reason"] == "rate-limited", message.headers
            assert message.headers["x-minqing-detail-zh"]
            back.append(message)
        wait_for(lambda: stack.scalar(
            "SELECT count(*) FROM intake.reports WHERE description LIKE :m",
            m=f"%{marker}%") == 3, what="the three accepted reports")
        assert stack.metric("intake", "minqing_partner_reports_total",
                            outcome="rate-limited") >= 3
        assert len(sent) == 6 and len(back) == 3
    finally:
        partner.close()
