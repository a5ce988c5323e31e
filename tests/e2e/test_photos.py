"""Photos can be shown (issue #12, point 1), against the real S3 server.

Every attachment in a report, a case or a timeline carries a `url` of the gateway; the
service that owns the report or case lets through exactly who may read it, and the
answer is a redirect to a short-lived presigned GET, so the bytes come from the store
(minqing_kernel/media.py). Open311's public `media_url` is an expiring presigned GET of
the first photo (services/intake/media.py).
"""
from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.fixtures import JPEG, wait_for

pytestmark = pytest.mark.integration

MEDIA_URL = re.compile(r"^/v1/(reports|cases)/[0-9a-f-]{36}/media/[0-9a-f]{32}\.jpg$")


def a_photo() -> bytes:
    """A JPEG no other test uploads: the bytes fetched can only be this one's."""
    return JPEG + os.urandom(512)


def fetched(client, url: str) -> requests.Response:
    """What a phone does with a media URL: GET it with its token, follow the redirect
    (requests drops the token when the redirect leaves for the store's port)."""
    return client.get(url, timeout=30)


def reported_with(stack, client, photo: bytes, **fields) -> dict:
    r = client.report(attachments=[client.upload(photo)], **fields)
    assert r.status_code == 201, r.text
    return r.json()


def case_of(stack, report_id: str) -> str:
    return wait_for(lambda: stack.case_for(report_id), what="the case to open")


def test_a_resident_sees_her_reports_photo_through_its_url(stack):
    # Given a resident's report with a photo
    resident = stack.client("resident-zhang")
    photo = a_photo()
    report = reported_with(stack, resident, photo)

    # When she fetches it through the URL her report carries
    url = resident.get(f"/v1/reports/{report['id']}").json()["attachments"][0]["url"]
    r = fetched(resident, url)

    # Then she gets exactly the bytes she uploaded, from the store
    assert MEDIA_URL.match(url), url
    assert r.status_code == 200, r.text
    assert r.content == photo
    assert r.history[0].status_code == 302
    assert r.history[0].headers["Cache-Control"] == "private, no-store"
    assert urlparse(r.url).port != urlparse(stack.gateway).port  # bytes came from the store


def test_the_url_in_the_list_of_her_reports_and_at_submission_works_too(stack):
    resident = stack.client("resident-zhang")
    photo = a_photo()
    report = reported_with(stack, resident, photo)
    listed = next(i for i in resident.get("/v1/reports").json()["items"]
                  if i["id"] == report["id"])
    assert listed["attachments"][0]["url"] == report["attachments"][0]["url"]
    assert fetched(resident, listed["attachments"][0]["url"]).content == photo


def test_another_resident_cannot_fetch_her_photo(stack):
    report = reported_with(stack, stack.client("resident-zhang"), a_photo())
    r = stack.client("resident-li").get(report["attachments"][0]["url"],
                                       allow_redirects=False)
    assert r.status_code == 403, r.text
    assert "Location" not in r.headers


def test_without_a_token_the_url_opens_nothing(stack):
    report = reported_with(stack, stack.client("resident-zhang"), a_photo())
    r = requests.get(stack.gateway + report["attachments"][0]["url"], allow_redirects=False,
                     timeout=10)
    assert r.status_code == 401


def test_a_name_not_on_the_report_is_a_404(stack):
    resident = stack.client("resident-zhang")
    report = reported_with(stack, resident, a_photo())
    other = reported_with(stack, resident, a_photo())
    name = other["attachments"][0]["url"].rsplit("/", 1)[-1]
    r = resident.get(f"/v1/reports/{report['id']}/media/{name}", allow_redirects=False)
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"


def test_the_handler_of_the_unit_sees_the_cases_photos_and_another_unit_does_not(stack):
    # Given a report with a photo, assigned to 石板桥 and resolved with a photo of the result
    photo, result = a_photo(), a_photo()
    report = reported_with(stack, stack.client("resident-zhang"), photo)
    case_id = case_of(stack, report["id"])
    operator, handler = stack.client("operator-chen"), stack.client("handler-shibanqiao")
    assert operator.post(f"/v1/cases/{case_id}/actions",
                         json={"action": "assign"}).status_code == 200
    assert handler.post(f"/v1/cases/{case_id}/actions",
                        json={"action": "accept"}).status_code == 200
    r = handler.post(f"/v1/cases/{case_id}/actions", json={
        "action": "resolve", "result": "已处理完毕", "attachments": [handler.upload(result)]})
    assert r.status_code == 200, r.text

    # When the handler opens the case, and the resident her timeline
    case = handler.get(f"/v1/cases/{case_id}").json()
    timeline = stack.client("resident-zhang").get(f"/v1/cases/{case_id}/timeline").json()

    # Then the report's photo and the result photo open for the handler, byte for byte
    assert fetched(handler, case["attachments"][0]["url"]).content == photo
    assert fetched(handler, case["result_attachments"][0]["url"]).content == result
    # and the resident sees the result photo through her timeline
    resolved = next(e for e in timeline["entries"] if e["action"] == "resolve")
    assert fetched(stack.client("resident-zhang"),
                   resolved["attachments"][0]["url"]).content == result
    # but a handler of another unit is refused, as for the case itself
    other = stack.client("handler-jinjiang")
    r = other.get(case["attachments"][0]["url"], allow_redirects=False)
    assert r.status_code == 403 and "Location" not in r.headers


def test_a_volunteer_sees_a_wishs_photo_on_the_board_and_a_resident_does_not(stack):
    # Given a resident's request for help with a photo, published on the wish board
    photo = a_photo()
    report = reported_with(stack, stack.client("resident-li"), photo,
                           category="help-wish", description="家里灯泡坏了，够不着，求帮忙更换")
    case_id = case_of(stack, report["id"])
    r = stack.client("operator-chen").post(f"/v1/cases/{case_id}/actions",
                                           json={"action": "publish_wish"})
    assert r.status_code == 200, r.text

    # When a volunteer reads the board, the wish's photo opens from it
    volunteer = stack.client("patroller-zhao")
    board = volunteer.get("/v1/wishes", params={"limit": 100}).json()["items"]
    wish = next(w for w in board if w["id"] == case_id)
    assert wish["attachments"][0]["url"].startswith(f"/v1/wishes/{case_id}/media/")
    assert fetched(volunteer, wish["attachments"][0]["url"]).content == photo
    # but not for another resident, who has no board
    r = stack.client("resident-wang").get(wish["attachments"][0]["url"],
                                          allow_redirects=False)
    assert r.status_code == 403 and "Location" not in r.headers


def test_open311_media_url_is_an_expiring_link_to_the_first_photo(stack):
    # Given one report with a photo and one without
    photo = a_photo()
    resident = stack.client("resident-wang")
    with_photo = reported_with(stack, resident, photo)
    r = resident.report()
    assert r.status_code == 201, r.text
    without = r.json()

    # When an Open311 client reads both
    r = requests.get(f"{stack.gateway}/open311/v2/requests.json", timeout=10, params={
        "service_request_id": f"{with_photo['id']},{without['id']}"})
    assert r.status_code == 200, r.text
    by_id = {x["service_request_id"]: x for x in r.json()}

    # Then the photo's media_url fetches the photo without any token, and expires
    media_url = by_id[with_photo["id"]]["media_url"]
    assert requests.get(media_url, timeout=10).content == photo
    query = parse_qs(urlparse(media_url).query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert resident.user["username"] not in media_url and resident.user["id"] not in media_url
    # and a report without a photo has none
    assert by_id[without["id"]]["media_url"] is None
