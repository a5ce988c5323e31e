"""Text that is not text a database or a reply can hold is refused as invalid input
(422, naming the field) wherever the gateway takes text, never a 500: a NUL character
(U+0000), which PostgreSQL's text type cannot store, and an unpaired surrogate (JSON's
"\\ud800" escape), which is not Unicode and cannot be encoded as UTF-8.

The NUL case was found by the schemathesis run (test_openapi_fuzz.py) on
POST /v1/auth/token; these pin the fix on every field that reaches a database or an
error message."""
from __future__ import annotations

import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration

BAD = {"nul": "楼上\x00噪音", "surrogate": "楼上\ud800噪音"}


def assert_invalid(r, field: str):
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["type"] == "/problems/invalid"
    assert field in {e["field"] for e in r.json()["errors"]}, r.text


@pytest.mark.parametrize("kind", sorted(BAD))
def test_sign_in(stack, kind):
    client = stack.client()
    assert_invalid(client.post("/v1/auth/token", json={"username": BAD[kind], "password": "x"}),
                   "username")
    assert_invalid(client.post("/v1/auth/token",
                               json={"username": "nobody", "password": BAD[kind]}), "password")


@pytest.mark.parametrize("kind", sorted(BAD))
def test_report_and_upload(stack, kind):
    resident, text = stack.client("resident-zhang"), BAD[kind]
    assert_invalid(resident.report(description=text), "description")
    assert_invalid(resident.report(address=text), "address")
    assert_invalid(resident.report(category=text), "category")
    assert_invalid(resident.report(attachments=[f"uploads/resident-zhang/{text}.jpg"]),
                   "attachments[0]")
    for field in ("content_type", "filename"):
        upload = {"content_type": "image/jpeg", "size": 10, field: text}
        assert_invalid(resident.post("/v1/uploads", json=upload), field)


@pytest.mark.parametrize("kind", sorted(BAD))
def test_case_action_and_feedback(stack, kind):
    resident, operator = stack.client("resident-zhang"), stack.client("operator-chen")
    report = resident.report()
    assert report.status_code == 201, report.text
    case_id = wait_for(lambda: stack.case_for(report.json()["id"]), what="the case")
    for action, field in (("reject", "note"), ("close_directly", "note"),
                          ("resolve", "result"), ("assign", "unit_id")):
        r = operator.post(f"/v1/cases/{case_id}/actions",
                          json={"action": action, field: BAD[kind]})
        assert_invalid(r, field)
    r = resident.post(f"/v1/cases/{case_id}/feedback", json={"rating": 4, "comment": BAD[kind]})
    assert_invalid(r, "comment")
    # None of it changed the case.
    assert operator.get(f"/v1/cases/{case_id}").json()["status"] == "screening"
