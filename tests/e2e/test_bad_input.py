"""Bad input gets a clear problem+json error and changes nothing.

Every refusal is an RFC 9457 problem: the right status, a stable `type`, and a detail a
person can act on in English and in Chinese. And a refused request leaves no trace: no
report, no outbox row, no trail entry.
"""
import re
import uuid

import pytest
import requests

from tests.fixtures import IN_SHIBANQIAO, JPEG, post_upload, wait_for
from tests.tokens import expired, forged, unsigned, wrong_audience

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
CJK = re.compile(r"[\u3400-\u9fff]")
OUT_OF_AREA = {"lat": 30.30, "lon": 120.30}
WATCHED_TABLES = ("intake.reports", "intake.outbox", "intake.attachments", "dispatch.cases",
                  "dispatch.case_trail", "dispatch.outbox")


def assert_problem(response: requests.Response, status: int, type_: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert content_type == "application/problem+json", response.headers
    problem = response.json()
    assert problem["type"] == type_, problem
    assert problem["status"] == status, problem
    assert problem["detail"].strip(), problem
    assert CJK.search(problem["detail_zh"]), problem
    return problem


def names_field(problem: dict, field: str) -> bool:
    return any(e["field"] == field for e in problem.get("errors", []))


def settled_state(stack) -> dict:
    """Row counts of what a request could change, once every earlier report has its case
    (so that nothing still in flight from other tests moves them under us)."""
    wait_for(lambda: stack.scalar(
        "SELECT count(*) FROM intake.reports r WHERE NOT EXISTS (SELECT 1 FROM "
        "dispatch.case_reports c WHERE c.report_id = r.id)") == 0,
        what="every earlier report to have its case")
    return state(stack)


def state(stack) -> dict:
    return {t: stack.scalar(f"SELECT count(*) FROM {t}") for t in WATCHED_TABLES}


@pytest.fixture
def resident(stack):
    return stack.client("resident-zhang")


@pytest.fixture
def operator(stack):
    return stack.client("operator-chen")


@pytest.fixture
def screening_case(stack, resident) -> dict:
    """A case opened from resident-zhang's report, waiting in screening."""
    r = resident.report(description="小区路灯不亮，晚上出行不便")
    assert r.status_code == 201, r.text
    case_id = wait_for(lambda: stack.case_for(r.json()["id"]), what="the case")
    return {"id": case_id, "report_id": r.json()["id"]}


def case_status(stack, case_id: str) -> str:
    return stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c", c=case_id)


# --- the body itself ------------------------------------------------------------------

@pytest.mark.parametrize("raw, content_type, status, type_", [
    (b'{"category": "dispute-noise", ', "application/json", 400, "/problems/malformed-json"),
    (b'[{"category": "dispute-noise"}]', "application/json", 400, "/problems/malformed-json"),
    (b"category=dispute-noise&description=noise", "application/x-www-form-urlencoded", 415,
     "/problems/unsupported-media-type"),
], ids=["malformed-json", "json-array", "not-json-content-type"])
def test_a_body_that_is_not_a_json_object_is_refused(stack, resident, raw, content_type,
                                                     status, type_):
    # Given
    before = settled_state(stack)
    # When
    r = resident.post("/v1/reports", data=raw, headers={"Content-Type": content_type})
    # Then
    assert_problem(r, status, type_)
    assert state(stack) == before


@pytest.mark.parametrize("field", ["category", "location"])
def test_a_report_missing_a_required_field_names_it(stack, resident, field):
    # Given a report without the field
    before = settled_state(stack)
    body = {"category": "dispute-noise", "description": "楼上深夜装修，噪音扰民",
            "location": IN_SHIBANQIAO}
    del body[field]
    # When
    r = resident.post("/v1/reports", json=body)
    # Then
    problem = assert_problem(r, 422, "/problems/invalid")
    assert names_field(problem, field), problem
    assert state(stack) == before


def test_a_report_with_an_unknown_field_names_it(stack, resident):
    before = settled_state(stack)
    r = resident.report(colour="red")
    problem = assert_problem(r, 422, "/problems/invalid")
    assert names_field(problem, "colour"), problem
    assert state(stack) == before


@pytest.mark.parametrize("fields, type_", [
    ({"location": OUT_OF_AREA}, "/problems/out-of-area"),
    ({"category": "alien-landing"}, "/problems/unknown-category"),
], ids=["outside-the-service-area", "unknown-category"])
def test_a_report_the_catalogue_or_the_map_does_not_allow_is_refused(stack, resident,
                                                                     fields, type_):
    before = settled_state(stack)
    r = resident.report(**fields)
    assert_problem(r, 422, type_)
    assert state(stack) == before


def test_a_report_with_a_too_short_description_names_it(stack, resident):
    before = settled_state(stack)
    r = resident.report(description="吵")
    problem = assert_problem(r, 422, "/problems/invalid")
    assert names_field(problem, "description"), problem
    assert state(stack) == before


LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


@pytest.mark.parametrize("description", ["   ", "长" * 2001])
def test_a_refused_report_says_why_in_chinese_with_no_english_word(stack, resident,
                                                                  description):
    # given a description of spaces only, or too long
    r = resident.report(description=description)
    # then the problem says, in Chinese, which field and why, from the catalogue
    problem = assert_problem(r, 422, "/problems/invalid")
    assert "描述" in problem["detail_zh"], problem
    assert not LATIN_WORD.search(problem["detail_zh"]), problem["detail_zh"]
    [error] = problem["errors"]
    assert error["field"] == "description" and error["message"]
    assert CJK.search(error["message_zh"]) and not LATIN_WORD.search(error["message_zh"])


def test_a_two_character_chinese_description_is_a_complete_report(stack, resident):
    r = resident.report(description="漏水")
    assert r.status_code == 201, r.text


# --- attachments ----------------------------------------------------------------------

def test_an_attachment_that_was_never_uploaded_is_refused(stack, resident):
    # Given a ticket she asked for but never sent a file with
    key = resident.post("/v1/uploads", json={"content_type": "image/jpeg",
                                             "size": len(JPEG)}).json()["object_key"]
    before = settled_state(stack)
    # When
    r = resident.report(attachments=[key])
    # Then
    assert_problem(r, 422, "/problems/attachment-missing")
    assert state(stack) == before


def test_someone_elses_upload_cannot_be_attached(stack, resident):
    # Given a photo resident-li uploaded
    theirs = stack.client("resident-li").upload(JPEG)
    before = settled_state(stack)
    # When resident-zhang attaches it to her report
    r = resident.report(attachments=[theirs])
    # Then
    assert_problem(r, 403, "/problems/attachment-not-yours")
    assert state(stack) == before


def test_an_upload_declared_too_large_gets_no_url(stack, resident):
    before = settled_state(stack)
    r = resident.post("/v1/uploads", json={"content_type": "image/jpeg", "size": 11 * MiB})
    assert_problem(r, 413, "/problems/attachment-too-large")
    assert state(stack) == before


def test_an_upload_larger_than_declared_never_reaches_a_report(stack, resident):
    # Given a ticket asked for a small photo, and 10 MiB + 1 byte of "photo" sent with it
    big = JPEG + b"\0" * (10 * MiB + 1 - len(JPEG))
    ticket = resident.post("/v1/uploads", json={"content_type": "image/jpeg",
                                                "size": len(JPEG)}).json()
    assert post_upload(ticket, big).status_code == 400  # the store's EntityTooLarge
    before = settled_state(stack)
    # When she submits it
    r = resident.report(attachments=[ticket["object_key"]])
    # Then there is nothing to attach
    assert_problem(r, 422, "/problems/attachment-missing")
    assert state(stack) == before


def test_an_upload_of_a_type_not_allowed_gets_no_url(stack, resident):
    before = settled_state(stack)
    r = resident.post("/v1/uploads", json={"content_type": "application/pdf", "size": 2048})
    assert_problem(r, 422, "/problems/attachment-type-not-allowed")
    assert state(stack) == before


def test_an_upload_that_is_not_really_its_declared_type_is_refused_at_submission(stack,
                                                                              resident):
    # Given a text file uploaded as image/jpeg
    key = resident.upload(b"this is a shopping list, not a photo\n" * 20, "image/jpeg")
    before = settled_state(stack)
    # When she submits it
    r = resident.report(attachments=[key])
    # Then
    assert_problem(r, 422, "/problems/attachment-wrong-type")
    assert state(stack) == before


# --- tokens ---------------------------------------------------------------------------

@pytest.mark.parametrize("make_token, type_", [
    (None, "/problems/token-missing"),
    (expired, "/problems/token-expired"),
    (forged, "/problems/token-invalid"),
    (unsigned, "/problems/token-invalid"),
    (wrong_audience, "/problems/token-invalid"),
], ids=["missing", "expired", "forged", "alg-none", "wrong-audience"])
def test_a_request_without_a_valid_token_is_refused(stack, resident, make_token, type_):
    # Given a caller whose token is absent or not one we issued, valid, for us
    caller = stack.client()
    if make_token is not None:
        token = make_token(resident.user, stack.st.env["JWT_SECRET"])
        caller.http.headers["Authorization"] = f"Bearer {token}"
    before = settled_state(stack)
    # When she submits an otherwise good report
    r = caller.report()
    # Then
    assert_problem(r, 401, type_)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert state(stack) == before


# --- ownership of reports -------------------------------------------------------------

def test_a_resident_cannot_read_another_residents_report(stack, resident):
    # Given a report by resident-zhang
    report = resident.report().json()
    before = settled_state(stack)
    # When resident-li reads it
    r = stack.client("resident-li").get(f"/v1/reports/{report['id']}")
    # Then
    assert_problem(r, 403, "/problems/forbidden")
    assert state(stack) == before


def test_a_resident_listing_reports_sees_only_her_own(stack, resident):
    # Given reports by resident-zhang and by resident-li
    li = stack.client("resident-li")
    zhangs = resident.report().json()
    lis = li.report(description="小区门口井盖松动，有安全隐患").json()
    # When resident-li lists reports
    r = li.get("/v1/reports", params={"limit": 100})
    # Then she sees hers and nobody else's
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert lis["id"] in [i["id"] for i in items]
    assert zhangs["id"] not in [i["id"] for i in items]
    assert {i["reporter_id"] for i in items} == {li.user["id"]}


# --- case actions ---------------------------------------------------------------------

def test_an_action_not_allowed_in_the_cases_state_is_a_conflict(stack, screening_case):
    # Given a case still in screening
    handler = stack.client("handler-shibanqiao")
    before = settled_state(stack)
    # When a handler tries to accept it
    r = handler.post(f"/v1/cases/{screening_case['id']}/actions", json={"action": "accept"})
    # Then
    assert_problem(r, 409, "/problems/action-not-allowed")
    assert state(stack) == before
    assert case_status(stack, screening_case["id"]) == "screening"


def test_resolving_a_case_that_was_not_accepted_is_a_conflict(stack, operator,
                                                              screening_case):
    # Given a case assigned to comm-shibanqiao but not yet accepted
    r = operator.post(f"/v1/cases/{screening_case['id']}/actions",
                      json={"action": "assign", "unit_id": "comm-shibanqiao"})
    assert r.status_code == 200, r.text
    before = settled_state(stack)
    # When that unit's handler resolves it
    r = stack.client("handler-shibanqiao").post(
        f"/v1/cases/{screening_case['id']}/actions",
        json={"action": "resolve", "result": "已处理"})
    # Then
    assert_problem(r, 409, "/problems/action-not-allowed")
    assert state(stack) == before
    assert case_status(stack, screening_case["id"]) == "assigned"


def test_a_resident_cannot_take_an_operators_action(stack, resident, screening_case):
    before = settled_state(stack)
    r = resident.post(f"/v1/cases/{screening_case['id']}/actions",
                      json={"action": "assign", "unit_id": "comm-shibanqiao"})
    problem = assert_problem(r, 403, "/problems/role-required")
    assert state(stack) == before
    assert case_status(stack, screening_case["id"]) == "screening"
    # the roles are named in Chinese, as the glossary names them
    assert "指挥中心操作员" in problem["detail_zh"] and "operator" not in problem["detail_zh"]


def test_a_handler_cannot_accept_a_case_of_another_unit(stack, operator, screening_case):
    # Given a case assigned to comm-shibanqiao
    r = operator.post(f"/v1/cases/{screening_case['id']}/actions",
                      json={"action": "assign", "unit_id": "comm-shibanqiao"})
    assert r.status_code == 200, r.text
    before = settled_state(stack)
    # When the handler of comm-jinjiang accepts it
    r = stack.client("handler-jinjiang").post(f"/v1/cases/{screening_case['id']}/actions",
                                              json={"action": "accept"})
    # Then
    assert_problem(r, 403, "/problems/not-your-unit")
    assert state(stack) == before
    assert case_status(stack, screening_case["id"]) == "assigned"


def test_rejecting_a_case_needs_a_note(stack, operator, screening_case):
    before = settled_state(stack)
    r = operator.post(f"/v1/cases/{screening_case['id']}/actions", json={"action": "reject"})
    problem = assert_problem(r, 422, "/problems/note-required")
    assert names_field(problem, "note"), problem
    assert state(stack) == before
    assert case_status(stack, screening_case["id"]) == "screening"


def test_assigning_a_case_to_an_unknown_unit_is_refused(stack, operator, screening_case):
    before = settled_state(stack)
    r = operator.post(f"/v1/cases/{screening_case['id']}/actions",
                      json={"action": "assign", "unit_id": "comm-atlantis"})
    problem = assert_problem(r, 422, "/problems/unknown-unit")
    assert names_field(problem, "unit_id"), problem
    assert state(stack) == before
    assert case_status(stack, screening_case["id"]) == "screening"


def test_acting_on_an_unknown_case_is_not_found(stack, operator):
    before = settled_state(stack)
    r = operator.post(f"/v1/cases/{uuid.uuid4()}/actions",
                      json={"action": "assign", "unit_id": "comm-shibanqiao"})
    assert_problem(r, 404, "/problems/not-found")
    assert state(stack) == before


def test_only_the_reporter_can_give_feedback_on_a_case(stack, screening_case):
    # Given resident-zhang's case
    before = settled_state(stack)
    # When resident-li rates it
    r = stack.client("resident-li").post(f"/v1/cases/{screening_case['id']}/feedback",
                                         json={"rating": 1, "comment": "不满意"})
    # Then
    assert_problem(r, 403, "/problems/not-your-case")
    assert state(stack) == before
    assert case_status(stack, screening_case["id"]) == "screening"


# --- routing --------------------------------------------------------------------------

def test_an_unknown_path_is_a_not_found_problem(stack, resident):
    r = resident.get("/v1/no-such-thing")
    assert_problem(r, 404, "/problems/http-404")


def test_a_wrong_method_is_a_method_not_allowed_problem(stack, resident):
    before = settled_state(stack)
    r = resident.http.delete(f"{stack.gateway}/v1/reports")
    assert_problem(r, 405, "/problems/http-405")
    assert state(stack) == before
