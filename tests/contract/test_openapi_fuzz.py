"""Schemathesis against the running gateway, driven by the OpenAPI document it serves.

Every operation in `/v1/openapi.json` is fuzzed over loopback in schemathesis's three
phases (the document's examples, coverage of its boundaries, then Hypothesis fuzzing with
positive and negative data), signed in as each role (resident, operator, handler,
leader, admin, discipline), under every check schemathesis has (`--checks all`): no 5xx;
a status code, content type, headers and body the document declares; schema-valid data
accepted and schema-invalid data refused; a 405 with `Allow` for a method the path does
not have; a missing required header or credential refused. Then call sequences along the
links schemathesis infers, for the checks that look at a sequence. The run is seeded and
derandomized, so a failure reproduces; it prints how many cases each role sent.

schemathesis's pytest integration (`schemathesis.pytest.from_fixture`) cannot run under
pytest 9.2 (it rewrites `Node._nodeid`, which pytest 9.2 no longer has), so each
operation's Hypothesis test is built with `schemathesis.pytest.lazy.get_all_tests` —
what that integration itself does — and run here in a loop, failures collected.
"""
from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
import requests
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401  (registers the OpenAPI checks)
import yaml
from schemathesis.core.result import Ok
from schemathesis.pytest.lazy import get_all_tests

from tests.fixtures import PASSWORD, ROOT

pytestmark = pytest.mark.integration

# One demo user of each role (reference/wangjiang.yaml): what a role may do changes which
# answers come back (403 for most operations as a resident, 2xx as an admin), so each is
# its own run.
ROLES = ("resident-zhang", "operator-chen", "handler-shibanqiao", "leader-jinjiang",
         "admin", "discipline-lu")
SEED = 20240611
# Hypothesis examples per operation in the fuzzing phase. The examples and coverage phases
# add what the document defines (every boundary, every missing or wrong-typed value), so
# each role gets well over 1,000 cases (the figures are printed) in about a minute.
MAX_EXAMPLES = 10
REAL_USERS = {u["username"] for u in yaml.safe_load(
    (ROOT / "reference" / "wangjiang.yaml").read_text(encoding="utf-8"))["users"]}
# `schemathesis run --checks all`: every check schemathesis registers (it loads the OpenAPI
# ones on import of schemathesis.specs.openapi.checks).
ALL_CHECKS = schemathesis.checks.CHECKS.get_all()

CASES: Counter = Counter()  # role -> cases sent
SECONDS: Counter = Counter()  # role -> how long its run took (printed, never asserted)
STATUSES: dict[str, Counter] = {role: Counter() for role in ROLES}  # role -> status -> count
FAILURES: dict[str, list[str]] = {role: [] for role in ROLES}  # role -> failing operations


@pytest.fixture(scope="module")
def fuzz_totals(request):
    yield
    # Written to the terminal (not captured): CI's log shows the counts on every run.
    with request.config.pluginmanager.get_plugin("capturemanager") \
            .global_and_fixture_disabled():
        _write_totals(request.config.pluginmanager.get_plugin("terminalreporter").write_line)


def _write_totals(write) -> None:
    write(f"\nschemathesis {schemathesis.__version__}, seed {SEED}, "
          f"max_examples {MAX_EXAMPLES}:")
    for role in ROLES:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(STATUSES[role].items()))
        write(f"  as {role}: {CASES[role]} cases in {SECONDS[role]:.0f} s, "
              f"{len(FAILURES[role])} failures (responses: {statuses})")
    write(f"  total: {sum(CASES.values())} cases, "
          f"{sum(len(f) for f in FAILURES.values())} failures")


# A request the document allows may still be refused for what no JSON Schema can say:
# an SMS code that is not the one sent, an answer to a question the report's category
# does not ask, a point outside the communities' polygons. Such a refusal names its
# reason; these are the only reasons a schema-valid request may be refused for.
# `/problems/invalid` (a field the document should have described) is never one of them:
# positive_data_acceptance, which allows 400 and 422 so that these pass, is narrowed back
# by `refused_only_for_what_no_schema_says`.
DOMAIN_REFUSALS = {
    "/problems/sms-code-invalid": "the code is not the one sent (a secret)",
    "/problems/sms-code-wrong": "the code is not the one sent (a secret)",
    "/problems/bad-attribute": "which questions a category asks is reference data",
    "/problems/out-of-area": "the service area is the communities' polygons (reference data)",
    "/problems/unknown-category": "the categories are reference data (GET /v1/categories)",
    "/problems/unknown-unit": "the units are reference data (GET /v1/units)",
    "/problems/invalid-rule": "the units, categories and communities are reference data",
    "/problems/bad-merge-target": "whether the case to merge into exists is state",
    "/problems/bad-period": "`from` before `to`, at most 366 days apart (two parameters)",
    "/problems/reward-range-invalid": "a rule's minimum not above its maximum (two fields)",
    "/problems/bad-leader": "whether an account is an active leader is state",
    "/problems/not-a-community": "which units are communities is reference data",
}
# Open311 answers errors as its own list (JSON or XML) with a description only, in
# Chinese: these are the reasons a schema-valid Open311 request may be refused for.
OPEN311_REFUSALS = {
    "的跨度不能超过 90 天": "start_date and end_date more than 90 days apart (two parameters)",
    "end_date 早于 start_date": "end_date before start_date (two parameters)",
    "该类别必须填写此项": "which questions a category asks is reference data",
    "该类别没有这一项": "which questions a category asks is reference data",
    "不在本平台服务范围": "the service area is the communities' polygons (reference data)",
}
ACCEPTED = ["2XX", "3XX", "400", "401", "403", "404", "409", "422", "429"]
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


def refused_only_for_what_no_schema_says(ctx, response, case) -> None:
    meta = case.meta
    if response.status_code not in (400, 422) or meta is None \
            or not meta.generation.mode.is_positive:
        return
    if case.path.startswith("/open311/"):
        assert any(reason in response.text for reason in OPEN311_REFUSALS), (
            f"an Open311 request the document allows was refused: {response.text[:300]}")
        return
    kind = response.json().get("type") if "json" in response.headers.get(
        "content-type", [""])[0] else None
    assert kind in DOMAIN_REFUSALS, (
        f"a request the document allows was refused with {kind}: {response.text[:300]}")


CHECKS = [*ALL_CHECKS, refused_only_for_what_no_schema_says]


def schema_config(gateway: str, token: str, stateful: bool = False) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "base-url": gateway,
        "headers": {"Authorization": f"Bearer {token}"},
        # No NUL characters: PostgreSQL's text cannot hold one, so every text field refuses
        # it (422), which test_invalid_text.py pins field by field. (`--generation-allow-x00
        # false` on the command line.)
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                       "database": "none", "allow-x00": False},
        # Call sequences along links are test_call_sequences_...'s concern; with the phase
        # off, schemathesis infers no links.
        "phases": {"stateful": {"enabled": stateful}},
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED},
                   # A declared size over a kind's limit is 413 (attachment-too-large),
                   # as the document says; schemathesis's list leaves 413 out.
                   "negative_data_rejection": {"expected-statuses": REJECTED}},
    })


def load_schema(gateway: str, username: str, stateful: bool = False):
    r = requests.post(f"{gateway}/v1/auth/token",
                      json={"username": username, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    config = schema_config(gateway, r.json()["access_token"], stateful)
    # Fetched here rather than with `openapi.from_url`, which would leave out the operation
    # the document was loaded from (GET /v1/openapi.json): that one is fuzzed too.
    document = requests.get(f"{gateway}/v1/openapi.json", timeout=10)
    assert document.status_code == 200, document.text
    return schemathesis.openapi.from_dict(document.json(), config=config)


def spare_real_accounts(case) -> None:
    """Sign-in attempts with a wrong password go to a made-up name, not a real one.

    The document's example signs in as resident-zhang, and the coverage phase varies its
    password; five wrong ones from this client would throttle that demo account's sign-in
    from 127.0.0.1 (gateway/signin.py) for the rest of the test session. A made-up name
    answers the same 401 (identity makes sure of that), so the contract is fuzzed just the
    same. The right password is kept.
    """
    body = case.body
    if (case.path == "/v1/auth/token" and isinstance(body, dict)
            and isinstance(body.get("username"), str) and body["username"] in REAL_USERS
            and body.get("password") != PASSWORD):
        body["username"] = f"{body['username']}-fuzzed"


# Deleting the signed-in account is fuzzed by the accounts test below with a throwaway
# resident: here it would delete the demo accounts every later test signs in as.
NOT_HERE = {"DELETE /v1/me"}


def declared_operations(document: dict) -> set[str]:
    return {f"{method.upper()} {path}" for path, item in document["paths"].items()
            for method in item if method in ("get", "put", "post", "delete", "patch")
            } - NOT_HERE


def fuzz_operations(schema, check, fuzzed: set, failures: list) -> None:
    """Run `check` over every operation of `schema`, adding each operation's label to
    `fuzzed` and each failure to `failures`: every operation is run and every failure
    reported (schemathesis raises a FailureGroup, a BaseExceptionGroup, when checks fail)."""
    for result in get_all_tests(schema=schema, test_func=check, settings=None,
                                given_kwargs=None):
        assert isinstance(result, Ok), f"the document has an invalid operation: {result.err()}"
        operation, run = result.ok()
        fuzzed.add(operation.label)
        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}")


@pytest.mark.parametrize("username", ROLES)
def test_gateway_conforms_to_its_openapi_document(stack, fuzz_totals, username):
    schema = load_schema(stack.gateway, username).exclude(method="DELETE", path="/v1/me")

    def check(case):
        CASES[username] += 1
        spare_real_accounts(case)
        response = case.call_and_validate(checks=CHECKS, timeout=30)
        STATUSES[username][f"{response.status_code}"] += 1

    # The seed, the Authorization header and the settings come from the schema's config.
    fuzzed, failures = set(), []
    started = time.monotonic()
    fuzz_operations(schema, check, fuzzed, failures)
    SECONDS[username] = time.monotonic() - started
    FAILURES[username] = failures
    assert fuzzed == declared_operations(schema.raw_schema), "not every operation was fuzzed"
    assert not failures, "\n\n".join(failures)
    # The run left the accounts that later tests sign in as usable.
    r = requests.post(f"{stack.gateway}/v1/auth/token",
                      json={"username": username, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text


# --- stateful: sequences of calls along the links schemathesis infers ----------------------
# Three of the checks look at a sequence, not a call: use_after_free (a resource answered
# after its DELETE succeeded), ensure_resource_availability (one a POST created is not
# found right after) and object_level_authorization. `schemathesis run --checks all` runs
# them in its stateful phase, over links it infers from the document (a response field
# that names another operation's parameter); so does this, as each role.
STATEFUL_EXAMPLES = 20
STATEFUL_CASES: Counter = Counter()


@pytest.mark.parametrize("username", ROLES)
def test_call_sequences_conform_to_the_document_under_every_check(stack, username):
    import hypothesis

    schema = load_schema(stack.gateway, username, stateful=True).exclude(
        method="DELETE", path="/v1/me")
    workflow = schema.as_state_machine()

    class Workflow(workflow):  # type: ignore[valid-type,misc]
        def before_call(self, case):
            spare_real_accounts(case)

        def get_call_kwargs(self, case):
            return {"timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            STATEFUL_CASES[username] += 1
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None,
                                   recorder=self.recorder)

    Workflow.run(settings=hypothesis.settings(
        max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None,
        derandomize=True, database=None, suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate]))
    print(f"stateful as {username}: {STATEFUL_CASES[username]} calls, 0 failures")
    assert STATEFUL_CASES[username] > 0


# --- accounts (issue #19): every check schemathesis has, as a resident and as an admin ---
ACCOUNT_ROLES = ("a new resident", "admin")


@pytest.mark.parametrize("username", ACCOUNT_ROLES)
def test_account_endpoints_conform_to_the_document_under_every_check(stack, username):
    if username == "admin":
        r = requests.post(f"{stack.gateway}/v1/auth/token",
                          json={"username": username, "password": PASSWORD}, timeout=10)
    else:  # a resident of its own: DELETE /v1/me is fuzzed too
        from tests.e2e.test_accounts import signed_up
        phone = f"135{uuid.uuid4().int % 10**8:08d}"
        signed_up(stack, phone)
        r = requests.post(f"{stack.gateway}/v1/auth/token", timeout=10,
                          json={"username": phone, "password": "my-first-pass"})
    assert r.status_code == 200, r.text
    config = schema_config(stack.gateway, r.json()["access_token"])
    document = requests.get(f"{stack.gateway}/v1/openapi.json", timeout=10).json()
    every = schemathesis.openapi.from_dict(document, config=config)
    accounts = every.include(tag="accounts")  # (a second include widens, it does not narrow)
    sent, fuzzed, failures = Counter(), set(), []

    def check(case):
        response = case.call_and_validate(checks=CHECKS, timeout=30)
        sent[str(response.status_code)] += 1

    # Deleting the account last: the resident's other operations are fuzzed signed in.
    for schema in (accounts.exclude(operation_id="delete_my_account"),
                   every.include(operation_id="delete_my_account")):
        fuzz_operations(schema, check, fuzzed, failures)
    print(f"accounts as {username}: {sum(sent.values())} cases, {len(failures)} failures, "
          f"responses {dict(sorted(sent.items()))}")
    # sign-up and codes (4), my data, password and account (3), staff (3), units (6)
    assert len(fuzzed) == 16, fuzzed
    assert not failures, "\n\n".join(failures)
    if username == "admin":  # still an admin, and can still sign in
        again = requests.post(f"{stack.gateway}/v1/auth/token",
                              json={"username": username, "password": PASSWORD}, timeout=10)
        assert again.status_code == 200, again.text
