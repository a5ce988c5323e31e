"""Uploads and object keys (issue #10, findings 1 and 6), against the real stack.

An object key reaches handlers (GET /v1/cases/{id}), volunteers (the wish board) and
平安365 (the work order's attributes), so it must not say who uploaded it. A ticket from
POST /v1/uploads is a presigned POST policy that binds one key, the declared content type
and at most the declared size; what a report points at is a copy the ticket cannot write,
so a second write through the ticket changes nothing the command center accepted.
"""
from __future__ import annotations

import re

import pytest
import requests

from minqing_kernel.objectstore import Store
from tests.fixtures import JPEG, post_upload, wait_for

pytestmark = pytest.mark.integration

OPAQUE_UPLOAD = re.compile(r"^uploads/[0-9a-f]{32}\.jpg$")
OPAQUE_ATTACHMENT = re.compile(r"^attachments/[0-9a-f]{32}\.jpg$")
IN_JINJIANG = {"lat": 30.2420, "lon": 120.1930}


def ticket_for(client, size: int = len(JPEG), content_type: str = "image/jpeg") -> dict:
    r = client.post("/v1/uploads", json={"content_type": content_type, "size": size})
    assert r.status_code == 201, r.text
    return r.json()


def assert_names_no_one(key: str, *users: dict) -> None:
    for user in users:
        assert user["id"] not in key and user["username"] not in key, key


def store(stack) -> Store:
    env = stack.st.env
    return Store({"S3": {"ENDPOINT": env["S3_ENDPOINT"], "ACCESS_KEY": env["S3_ACCESS_KEY"],
                         "SECRET_KEY": env["S3_SECRET_KEY"], "BUCKET": env["S3_BUCKET"]}})


def stored_bytes(stack, key: str) -> bytes:
    s = store(stack)
    response = s.client.get_object(s.bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def report_with_photo(stack, client, **fields) -> dict:
    key = client.upload(JPEG)
    r = client.report(attachments=[key], **fields)
    assert r.status_code == 201, r.text
    return r.json()


# --- finding 1: keys say nothing about who uploaded ------------------------------------

def test_an_upload_ticket_key_is_random_and_names_no_one(stack):
    # Given a signed-in resident
    resident = stack.client("resident-zhang")
    # When she asks for an upload ticket
    ticket = ticket_for(resident)
    # Then its key is random and carries neither her id nor her username
    assert OPAQUE_UPLOAD.match(ticket["object_key"]), ticket["object_key"]
    assert_names_no_one(ticket["object_key"], resident.user)
    assert_names_no_one(str(ticket["fields"]), resident.user)


def test_the_key_a_handler_sees_on_the_case_names_no_one(stack):
    # Given a resident's report with a photo, assigned to the unit of its community
    resident, operator = stack.client("resident-zhang"), stack.client("operator-chen")
    report = report_with_photo(stack, resident)
    case_id = wait_for(lambda: stack.case_for(report["id"]), what="the case")
    r = operator.post(f"/v1/cases/{case_id}/actions", json={"action": "assign"})
    assert r.status_code == 200, r.text
    # When the unit's handler reads the case
    case = stack.client("handler-shibanqiao").get(f"/v1/cases/{case_id}").json()
    # Then the attachment is there under an opaque key
    keys = [a["key"] for a in case["attachments"]]
    assert len(keys) == 1 and OPAQUE_ATTACHMENT.match(keys[0]), keys
    assert_names_no_one(keys[0], resident.user)
    assert [a["key"] for a in report["attachments"]] == keys


def test_the_key_a_volunteer_sees_on_the_wish_board_names_no_one(stack):
    # Given a resident's help request with a photo, published as a micro-wish
    resident, operator = stack.client("resident-li"), stack.client("operator-chen")
    report = report_with_photo(stack, resident, category="help-wish", location=IN_JINJIANG,
                               description="独居老人，卫生间水龙头漏水，想请人帮忙修一下")
    case_id = wait_for(lambda: stack.case_for(report["id"]), what="the case")
    r = operator.post(f"/v1/cases/{case_id}/actions", json={"action": "publish_wish"})
    assert r.status_code == 200, r.text
    # When a volunteer reads the board
    board = stack.client("patroller-zhao").get("/v1/wishes",
                                               params={"claimed": "false", "limit": 100})
    wish = next(w for w in board.json()["items"] if w["id"] == case_id)
    # Then the photo's key there is opaque
    keys = [a["key"] for a in wish["attachments"]]
    assert len(keys) == 1 and OPAQUE_ATTACHMENT.match(keys[0]), keys
    assert_names_no_one(keys[0], resident.user)


def test_the_key_in_the_pingan365_work_order_names_no_one(stack):
    # Given a resident's report with a photo that the command center hands to 平安365
    resident, operator = stack.client("resident-zhang"), stack.client("operator-chen")
    report = report_with_photo(stack, resident, category="hazard-facility",
                               description="小区东门外人行道塌陷，需区里协调抢修")
    case_id = wait_for(lambda: stack.case_for(report["id"]), what="the case")
    r = operator.post(f"/v1/cases/{case_id}/actions", json={
        "action": "escalate_external", "partner": "ping_an_365", "note": "超出街道处置能力"})
    assert r.status_code == 200, r.text
    # When the bridge has opened the work order on the partner
    sim = f"http://{stack.st.env['PINGAN365_SIM_ADDRESS']}/_sim/requests"

    def work_order():
        orders = requests.get(sim, headers=stack.sim_admin_headers, timeout=5).json()[
            "requests"]
        return next((w for w in orders
                     if w["attributes"].get("minqing_case_id") == case_id), None)
    order = wait_for(work_order, 60, "the work order on 平安365")
    # Then the attachment it names is the report's opaque key, and nobody's name
    keys = order["attributes"]["minqing_attachments"].split(",")
    assert keys == [a["key"] for a in report["attachments"]]
    assert OPAQUE_ATTACHMENT.match(keys[0]), keys
    assert_names_no_one(str(order), resident.user)


# --- finding 6: the store takes only what the ticket declared ------------------------

def test_a_body_larger_than_declared_is_refused_by_the_store(stack):
    # Given a ticket for a photo of len(JPEG) bytes
    resident = stack.client("resident-zhang")
    ticket = ticket_for(resident)
    # When a body 1 MB larger is sent with it
    r = post_upload(ticket, JPEG + bytes(1024 * 1024))
    # Then the store refuses it, keeps nothing, and a report cannot attach it
    assert r.status_code == 400 and "EntityTooLarge" in r.text, (r.status_code, r.text)
    assert store(stack).stat(ticket["object_key"]) is None
    assert resident.report(attachments=[ticket["object_key"]]).json()["type"] == \
        "/problems/attachment-missing"


def test_a_body_of_another_content_type_is_refused_by_the_store(stack):
    # Given a ticket for a JPEG photo
    ticket = ticket_for(stack.client("resident-zhang"))
    # When an HTML page is sent with it, declared as text/html
    r = post_upload(ticket, b"<html><script>alert(1)</script></html>", "text/html",
                    **{"Content-Type": "text/html"})
    # Then the store refuses it and keeps nothing
    assert r.status_code == 403, (r.status_code, r.text)
    assert store(stack).stat(ticket["object_key"]) is None


def test_html_sent_as_a_jpeg_is_refused_when_attached(stack):
    # Given an HTML page sent with a JPEG ticket under the declared type (the store lets
    # the bytes through: it cannot look inside)
    resident = stack.client("resident-zhang")
    page = b"<html><script>alert(1)</script></html>"
    ticket = ticket_for(resident, size=len(page))
    assert post_upload(ticket, page).status_code == 204
    # When it is attached to a report
    r = resident.report(attachments=[ticket["object_key"]])
    # Then intake refuses it: the bytes are not a JPEG
    assert r.status_code == 422 and r.json()["type"] == "/problems/attachment-wrong-type", \
        r.text


def test_a_second_write_after_acceptance_does_not_change_what_the_report_serves(stack):
    # Given a report that accepted a photo
    resident = stack.client("resident-zhang")
    ticket = ticket_for(resident)
    assert post_upload(ticket, JPEG).status_code == 204
    r = resident.report(attachments=[ticket["object_key"]])
    assert r.status_code == 201, r.text
    accepted = r.json()["attachments"][0]["key"]
    # When the same ticket is used again, within its lifetime, with other bytes
    other = JPEG[:3] + b"\xe1" + bytes(len(JPEG) - 4)
    assert post_upload(ticket, other).status_code == 204
    # Then the report still points at the original bytes
    assert accepted != ticket["object_key"]
    assert stored_bytes(stack, accepted) == JPEG
    shown = resident.get(f"/v1/reports/{r.json()['id']}").json()["attachments"]
    assert [a["key"] for a in shown] == [accepted]


def test_an_upload_attached_to_one_report_cannot_be_attached_to_another(stack):
    # Given a photo attached to a report
    resident = stack.client("resident-zhang")
    key = resident.upload(JPEG)
    assert resident.report(attachments=[key]).status_code == 201
    # When the same upload is attached to a second report
    r = resident.report(attachments=[key], description="同一张照片再报一次，看能否复用")
    # Then it is refused as used
    assert r.status_code == 409 and r.json()["type"] == "/problems/attachment-already-used", \
        r.text
    assert re.search(r"[\u3400-\u9fff]", r.json()["detail_zh"])


def test_a_resent_submission_with_its_upload_is_the_same_report(stack):
    # Given a report with a photo, sent with an Idempotency-Key
    resident = stack.client("resident-zhang")
    key = resident.upload(JPEG)
    first = resident.report(attachments=[key], headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    # When the phone sends it again (the answer was lost)
    again = resident.report(attachments=[key], headers={"Idempotency-Key": key})
    # Then it is the same report, with the same attachment: not a second use
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["attachments"] == first.json()["attachments"]


def test_someone_elses_upload_cannot_be_attached_to_a_case_action(stack):
    # Given a photo a resident uploaded and an assigned case the handler has accepted
    resident, operator = stack.client("resident-zhang"), stack.client("operator-chen")
    handler = stack.client("handler-shibanqiao")
    theirs = resident.upload(JPEG)
    report = report_with_photo(stack, resident)
    case_id = wait_for(lambda: stack.case_for(report["id"]), what="the case")
    assert operator.post(f"/v1/cases/{case_id}/actions",
                         json={"action": "assign"}).status_code == 200
    assert handler.post(f"/v1/cases/{case_id}/actions",
                        json={"action": "accept"}).status_code == 200
    # When the handler resolves it with the resident's upload
    r = handler.post(f"/v1/cases/{case_id}/actions", json={
        "action": "resolve", "result": "已处理", "attachments": [theirs]})
    # Then it is refused as not theirs
    assert r.status_code == 403 and r.json()["type"] == "/problems/attachment-not-yours", \
        r.text


def test_uploads_nobody_attached_are_expired_by_the_store_after_a_day(stack):
    # Given the provisioned bucket; then uploads/ (staging) expires, attachments/ does not
    s = store(stack)
    rules = s.client.get_bucket_lifecycle(s.bucket).rules
    assert [(r.rule_filter.prefix, r.expiration.days) for r in rules] == [("uploads/", 1)]


# --- finding 6: tickets are rate-limited per account (last: restarts the gateway) -------

@pytest.fixture
def tight_upload_limit(stack):
    # 10 at once, then 1 a minute: the 11th of a burst is refused whatever the timing
    stack.restart("gateway", UPLOAD_BURST="10", UPLOAD_RATE_PER_MIN="1")
    yield
    stack.restart("gateway")


def test_the_eleventh_upload_ticket_of_a_burst_is_refused_with_when_to_retry(
        stack, tight_upload_limit):
    # Given a resident on a gateway allowing a burst of 10 upload tickets
    resident = stack.client("resident-wang")
    body = {"content_type": "image/jpeg", "size": len(JPEG)}
    # When she asks for 11 in a row
    answers = [resident.post("/v1/uploads", json=body) for _ in range(11)]
    # Then the first 10 are issued and the 11th is told when to come back
    assert [a.status_code for a in answers[:10]] == [201] * 10
    r = answers[10]
    assert r.status_code == 429, r.text
    problem = r.json()
    assert problem["type"] == "/problems/rate-limited" and problem["retry_after_s"] >= 1
    assert r.headers["Retry-After"] == str(problem["retry_after_s"])
    assert re.search(r"[\u3400-\u9fff]", problem["detail_zh"])
    # And the limit is hers alone
    assert stack.client("resident-li").post("/v1/uploads", json=body).status_code == 201
