"""Conformance of our Open311 GeoReport v2 server (/open311/v2/) to the spec, in JSON and
XML, through the real running gateway (http://wiki.open311.org/GeoReport_v2).

Every answer is read in both formats and the XML must say exactly what the JSON says
(the spec's Spark convention). Errors are the spec's list of {code, description} with the
spec's statuses (400, 403, 404); GET requests lists the last 90 days and at most 1000 by
default. No answer names a reporter or carries a phone number.
"""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
import requests
import sqlalchemy as sa
import yaml

from tests.fixtures import IN_SHIBANQIAO, ROOT, wait_for

pytestmark = pytest.mark.integration

V2 = "/open311/v2"
REFERENCE = yaml.safe_load((ROOT / "reference" / "wangjiang.yaml").read_text(encoding="utf-8"))
DEMO_KEY = REFERENCE["open311_partners"][0]["api_key"]
DEMO_PARTNER = REFERENCE["open311_partners"][0]["username"]
LISTS = {"services", "attributes", "values", "endpoints", "formats", "service_requests",
         "errors", "service_request_updates"}
FORMATS = ("json", "xml")
PHONE = re.compile(r"(?<![0-9A-Za-z])1\d{10}(?![0-9A-Za-z])")
W3_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --- reading both formats ------------------------------------------------------------------

def from_xml(element: ET.Element):
    """The XML back into the JSON's shape: lists by their container's name, text as is."""
    if element.tag in LISTS:
        return [from_xml(child) for child in element]
    if len(element):
        return {child.tag: from_xml(child) for child in element}
    return element.text if element.text else None


def as_text(value):
    """The JSON as XML can say it: every scalar a string, booleans true/false."""
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def no_people(response: requests.Response) -> None:
    text = response.content.decode("utf-8")
    assert not PHONE.search(text), f"a phone number in {response.url}"
    assert DEMO_PARTNER not in text and "reporter" not in text, f"a reporter in {response.url}"


def both(stack, resource: str, **params):
    """The resource in JSON and in XML, after checking the XML says what the JSON says."""
    headers = params.pop("headers", None)
    as_json = requests.get(f"{stack.gateway}{V2}/{resource}.json", params=params,
                           headers=headers, timeout=30)
    as_xml = requests.get(f"{stack.gateway}{V2}/{resource}.xml", params=params,
                          headers=headers, timeout=30)
    for r in (as_json, as_xml):
        no_people(r)
    assert as_json.status_code == as_xml.status_code, (as_json.text, as_xml.text)
    assert as_json.headers["Content-Type"] == "application/json; charset=utf-8"
    assert as_xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert as_xml.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert from_xml(ET.fromstring(as_xml.content)) == as_text(as_json.json())
    return as_json.status_code, as_json.json(), ET.fromstring(as_xml.content)


def file_request(stack, fmt: str = "json", headers: dict | None = None, **fields):
    form = {"api_key": DEMO_KEY, "service_code": "dispute-noise",
            "lat": IN_SHIBANQIAO["lat"], "long": IN_SHIBANQIAO["lon"],
            "description": "Open311：楼上深夜装修，噪音扰民", "email": "someone@example.com",
            "first_name": "晓明", "phone": "13912340000", "address_string": "始版桥直街 12 号"}
    form.update(fields)
    form = {k: v for k, v in form.items() if v is not None}
    r = requests.post(f"{stack.gateway}{V2}/requests.{fmt}", data=form, headers=headers,
                      timeout=30)
    no_people(r)
    return r


def assert_error(status_json: tuple, status: int, mentions: str) -> None:
    """The spec's error body, in both formats: [{code, description}] / <errors><error>."""
    got, body, xml = status_json
    assert got == status
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code",
                                                                          "description"}
    assert body[0]["code"] == status and mentions in body[0]["description"], body
    assert xml.tag == "errors" and [e.tag for e in xml] == ["error"]
    assert xml.find("error/code").text == str(status)


def reports_stored(stack) -> int:
    return stack.scalar("SELECT count(*) FROM intake.reports WHERE channel = 'open311'")


@pytest.fixture(scope="module")
def operator(stack):
    return stack.client("operator-chen")


@pytest.fixture(scope="module")
def handler(stack):
    return stack.client("handler-shibanqiao")


def case_of(stack, report_id: str) -> str:
    return wait_for(lambda: stack.case_for(report_id), what="the case")


# --- discovery and services -----------------------------------------------------------------

def test_discovery_names_the_georeport_v2_endpoint_and_both_formats(stack):
    status, body, xml = both(stack, "discovery")
    assert status == 200 and xml.tag == "discovery"
    [endpoint] = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == f"{stack.gateway}{V2}"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert {"changeset", "contact", "key_service"} <= set(body)


def test_every_category_is_a_realtime_service(stack):
    status, services, xml = both(stack, "services")
    assert status == 200 and xml.tag == "services" and {e.tag for e in xml} == {"service"}
    assert sorted(s["service_code"] for s in services) == sorted(
        c["code"] for c in REFERENCE["categories"])
    noise = next(s for s in services if s["service_code"] == "dispute-noise")
    assert noise["service_name"] == "噪音扰民" and noise["type"] == "realtime"
    assert noise["metadata"] is True and noise["group"] == "矛盾纠纷"
    assert next(s for s in services if s["service_code"] == "help-elderly")["metadata"] is False


def test_names_are_in_english_when_the_client_prefers_it(stack):
    _, services, _ = both(stack, "services", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert next(s for s in services
                if s["service_code"] == "dispute-noise")["service_name"] == "Noise nuisance"


def test_a_service_definition_lists_the_categorys_attributes(stack):
    status, definition, xml = both(stack, "services/hazard-facility")
    assert status == 200 and xml.tag == "service_definition"
    assert definition["service_code"] == "hazard-facility"
    [facility] = definition["attributes"]
    assert (facility["code"], facility["datatype"], facility["required"],
            facility["variable"], facility["order"]) == (
        "facility", "singlevaluelist", True, True, 1)
    assert {v["key"] for v in facility["values"]} == {"streetlight", "manhole", "bench",
                                                       "railing", "other"}
    assert xml.find("attributes/attribute/values/value/key").text == "streetlight"


def test_an_unknown_service_code_is_a_404_in_the_specs_error_format(stack):
    assert_error(both(stack, "services/no-such-code"), 404, "no-such-code")


def test_an_unknown_format_is_a_404_answered_in_xml(stack):
    r = requests.get(f"{stack.gateway}{V2}/services.yaml", timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert ET.fromstring(r.content).find("error/code").text == "404"


def test_our_jurisdiction_may_be_named_and_another_is_a_404(stack):
    assert both(stack, "services", jurisdiction_id="wangjiang")[0] == 200
    assert_error(both(stack, "services", jurisdiction_id="sfgov.org"), 404, "sfgov.org")


# --- filing a request -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("api_key", [None, "", "not-a-key", DEMO_KEY + "x"])
def test_filing_without_a_valid_api_key_is_a_403_and_stores_nothing(stack, fmt, api_key):
    before = reports_stored(stack)
    r = file_request(stack, fmt, api_key=api_key)
    assert r.status_code == 403
    if fmt == "json":
        [error] = r.json()
        assert error["code"] == 403 and "api_key" in error["description"]
    else:
        assert ET.fromstring(r.content).find("error/code").text == "403"
    assert reports_stored(stack) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_partner_files_a_request_and_gets_its_id_at_once(stack, fmt):
    r = file_request(stack, fmt)
    assert r.status_code == 200, r.text
    if fmt == "json":
        [created] = r.json()
        request_id = created["service_request_id"]
        assert created["service_notice"] and "token" not in created
    else:
        request_id = ET.fromstring(r.content).find("request/service_request_id").text
    # Then it is a report of the partner's, on the open311 channel, without the
    # submitter's contacts (which we do not keep)
    row = stack.engine.connect().execute(sa.text(
        "SELECT submitted_by, channel, reporter_phone FROM intake.reports WHERE id = :i"),
        {"i": request_id}).one()
    assert tuple(row) == (DEMO_PARTNER, "open311", None)
    # And anyone can read it back, without learning who filed it
    status, [shown], xml = both(stack, f"requests/{request_id}")
    assert status == 200 and xml.tag == "service_requests"
    assert shown["service_request_id"] == request_id and shown["status"] == "open"
    assert (shown["service_code"], shown["service_name"]) == ("dispute-noise", "噪音扰民")
    assert (shown["lat"], shown["long"]) == (IN_SHIBANQIAO["lat"], IN_SHIBANQIAO["lon"])
    assert shown["address"] == "始版桥直街 12 号" and shown["media_url"] is None
    assert W3_UTC.match(shown["requested_datetime"]) and W3_UTC.match(shown["updated_datetime"])


def test_attribute_answers_are_checked_and_kept(stack):
    r = file_request(stack, service_code="dispute-noise",
                     **{"attribute[noise_source][]": ["music", "renovation"],
                        "attribute[noticed_at]": "2026-11-30T22:30:00+08:00"})
    assert r.status_code == 200, r.text
    kept = stack.scalar("SELECT attributes FROM intake.reports WHERE id = :i",
                        i=r.json()[0]["service_request_id"])
    assert kept == {"noise_source": ["music", "renovation"],
                    "noticed_at": "2026-11-30T22:30:00+08:00"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("change, mentions", [
    ({"service_code": None}, "service_code"),
    ({"lat": None, "long": None}, "lat"),
    ({"lat": "north"}, "lat"),
    ({"long": "200"}, "long"),
    ({"lat": 30.30, "long": 120.30}, "30.3"),                      # outside the subdistrict
    ({"description": "短"}, "description"),
    ({"service_code": "hazard-facility"}, "facility"),              # a required attribute
    ({"service_code": "hazard-facility", "attribute[facility]": "moon"}, "facility"),
    ({"attribute[floor]": "3"}, "floor"),                         # not this category's
])
def test_a_request_the_spec_or_our_rules_refuse_is_a_400_that_says_why(stack, fmt, change,
                                                                       mentions):
    before = reports_stored(stack)
    r = file_request(stack, fmt, headers={"Accept-Language": "en"}, **change)
    assert r.status_code == 400, r.text
    if fmt == "json":
        [error] = r.json()
        assert error["code"] == 400 and mentions in error["description"], error
    else:
        error = ET.fromstring(r.content).find("error")
        assert error.find("code").text == "400" and mentions in error.find("description").text
    assert reports_stored(stack) == before


def test_an_unknown_service_code_to_file_under_is_a_404(stack):
    r = file_request(stack, service_code="no-such-code")
    assert r.status_code == 404 and r.json()[0]["code"] == 404


def test_errors_are_in_chinese_unless_the_client_prefers_english(stack):
    assert "api_key" in file_request(stack, api_key="x").json()[0]["description"]
    zh = file_request(stack, api_key="x").json()[0]["description"]
    en = file_request(stack, api_key="x",
                      headers={"Accept-Language": "en"}).json()[0]["description"]
    assert "无效" in zh and "not valid" in en


def test_the_same_idempotency_key_files_one_request(stack):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first, again = file_request(stack, headers=key), file_request(stack, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]


def test_a_token_resolves_to_its_request_and_an_unknown_one_is_a_404(stack):
    request_id = file_request(stack).json()[0]["service_request_id"]
    status, [resolved], _ = both(stack, f"tokens/{request_id}")
    assert status == 200 and resolved == {"service_request_id": request_id,
                                          "token": request_id}
    assert_error(both(stack, f"tokens/{uuid.uuid4()}"), 404, "token")
    assert_error(both(stack, "tokens/not-a-token"), 404, "token")


def test_an_unknown_request_is_a_404(stack):
    assert_error(both(stack, f"requests/{uuid.uuid4()}"), 404, "不存在")
    assert_error(both(stack, "requests/12345"), 404, "12345")


# --- status, notes, deadlines and updates follow the case -------------------------------------

def open311_state(stack, request_id: str, **params) -> dict:
    return both(stack, f"requests/{request_id}", **params)[1][0]


def test_status_notes_and_expected_time_follow_the_case(stack, operator, handler):
    request_id = file_request(stack).json()[0]["service_request_id"]
    case = case_of(stack, request_id)
    assert open311_state(stack, request_id)["expected_datetime"] is None

    # When the command center assigns it, it is expected by the accept deadline
    r = operator.post(f"/v1/cases/{case}/actions", json={"action": "assign"})
    assert r.status_code == 200, r.text
    shown = open311_state(stack, request_id)
    assert shown["status"] == "open" and shown["agency_responsible"] == "始版桥社区"
    accept_due = datetime.fromisoformat(r.json()["accept_due_at"])
    assert shown["expected_datetime"] == accept_due.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    assert open311_state(stack, request_id, headers={"Accept-Language": "en"})[
        "agency_responsible"] == "Shibanqiao Community"

    # When the handler accepts it, by the resolve deadline
    r = handler.post(f"/v1/cases/{case}/actions", json={"action": "accept"})
    resolve_due = datetime.fromisoformat(r.json()["resolve_due_at"])
    assert open311_state(stack, request_id)["expected_datetime"] == resolve_due.astimezone(
        UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # When it is resolved, still open (the reporter has not rated it), noting the result
    r = handler.post(f"/v1/cases/{case}/actions",
                     json={"action": "resolve", "result": "已上门劝导，夜间停止施工"})
    shown = open311_state(stack, request_id)
    assert (shown["status"], shown["status_notes"]) == ("open", "已上门劝导，夜间停止施工")
    updated = datetime.fromisoformat(r.json()["updated_at"]).astimezone(UTC)
    assert shown["updated_datetime"] == updated.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_rejected_request_is_closed_with_the_reason(stack, operator):
    request_id = file_request(stack).json()[0]["service_request_id"]
    case = case_of(stack, request_id)
    r = operator.post(f"/v1/cases/{case}/actions",
                      json={"action": "reject", "note": "重复反映，已并入此前的案卷处理"})
    assert r.status_code == 200, r.text
    shown = open311_state(stack, request_id)
    assert (shown["status"], shown["status_notes"]) == ("closed", "重复反映，已并入此前的案卷处理")
    closed = both(stack, "requests", service_request_id=request_id, status="open")[1]
    assert [s["status"] for s in closed] == ["closed"]  # the id overrides the status filter


def test_every_step_of_the_case_is_an_update_since_a_time(stack, operator):
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    request_id = file_request(stack).json()[0]["service_request_id"]
    case = case_of(stack, request_id)
    operator.post(f"/v1/cases/{case}/actions", json={"action": "assign"})
    operator.post(f"/v1/cases/{case}/actions",
                  json={"action": "assign", "unit_id": "dept-chengguan",
                        "note": "涉及占道施工，转城管科"})

    status, updates, xml = both(stack, "servicerequestupdates",
                                start_date=since.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert status == 200 and xml.tag == "service_request_updates"
    mine = [u for u in updates if u["service_request_id"] == request_id]
    assert [u["update_id"] for u in mine] == [f"{request_id}-{n}" for n in (1, 2, 3)]
    assert [u["description"] for u in mine] == ["立案", "派单", "涉及占道施工，转城管科"]
    assert {u["status"] for u in mine} == {"open"} and all(
        W3_UTC.match(u["updated_datetime"]) for u in mine)
    assert [e.tag for e in xml][:1] == ["request_update"]


# --- listing: the spec's filters and its 90-day / 1000-request defaults -------------------------

VOLUME = "test-open311-volume"


@pytest.fixture(scope="module")
def volume(stack):
    """1,005 requests of a category of their own: 1,003 in the last 90 days (one a minute,
    newest first), and two older ones (91 and 120 days ago). Written straight into intake
    (no cases: they are all open); removed afterwards."""
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [now - timedelta(minutes=n) for n in range(1003)]
    old = [now - timedelta(days=91), now - timedelta(days=120)]
    with stack.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO intake.categories (code, \"group\", name_zh, name_en) "
            "VALUES (:c, 'hazard', '测试类别', 'Test category')"), {"c": VOLUME})
        conn.execute(sa.text(
            "INSERT INTO intake.reports (id, reporter_id, reporter_phone, submitted_by, channel,"
            " category, description, lat, lon, attachments, submitted_at) VALUES (:id,"
            " 'resident-zhang', '13800000001', 'resident-zhang', 'app', :c, :d, 30.24, 120.187,"
            " '[]', :at)"),
            [{"id": str(uuid.uuid4()), "c": VOLUME, "d": f"第 {i} 条", "at": at}
             for i, at in enumerate(recent + old)])
    yield {"now": now, "recent": recent, "old": old}
    with stack.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM intake.reports WHERE category = :c"), {"c": VOLUME})
        conn.execute(sa.text("DELETE FROM intake.categories WHERE code = :c"), {"c": VOLUME})


def listed(stack, **params) -> list[dict]:
    status, body, _ = both(stack, "requests", service_code=VOLUME, **params)
    assert status == 200, body
    return body


def test_by_default_at_most_1000_requests_of_the_last_90_days_newest_first(stack, volume):
    first = listed(stack)
    assert len(first) == 1000
    times = [r["requested_datetime"] for r in first]
    assert times == sorted(times, reverse=True)
    assert times[0] == volume["now"].strftime("%Y-%m-%dT%H:%M:%SZ")
    # The next page has the rest of the last 90 days, and nothing older
    rest = listed(stack, page=2)
    assert [r["description"] for r in rest] == ["第 1000 条", "第 1001 条", "第 1002 条"]


def test_a_date_range_of_at_most_90_days_reaches_older_requests(stack, volume):
    now = volume["now"]
    window = listed(stack, start_date=(now - timedelta(days=125)).isoformat(),
                    end_date=(now - timedelta(days=36)).isoformat())
    assert [r["description"] for r in window] == ["第 1003 条", "第 1004 条"]
    only_start = listed(stack, start_date=(now - timedelta(days=121)).isoformat())
    assert [r["description"] for r in only_start] == ["第 1003 条", "第 1004 条"]


def test_page_size_and_status_filter_the_list(stack, volume):
    assert [r["description"] for r in listed(stack, page_size=2, page=3)] == [
        "第 4 条", "第 5 条"]
    assert listed(stack, status="closed") == []
    assert len(listed(stack, status="open", page_size=5)) == 5
    assert len(listed(stack, status="open,closed", page_size=7)) == 7


@pytest.mark.parametrize("params, mentions", [
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "90"),
    ({"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "end_date"),
    ({"start_date": "yesterday"}, "start_date"),
    ({"end_date": "2026-01-01T00:00:00"}, "end_date"),        # no time zone
    ({"status": "pending"}, "status"),
    ({"page_size": "1001"}, "page_size"),
    ({"page": "0"}, "page"),
])
def test_a_query_outside_the_spec_is_a_400_that_says_why(stack, params, mentions):
    assert_error(both(stack, "requests", **params, headers={"Accept-Language": "en"}), 400,
                 mentions)


def test_refusals_are_counted_by_endpoint_and_status(stack):
    before = stack.metric("gateway", "minqing_open311_errors_total", endpoint="requests",
                          status="400")
    both(stack, "requests", status="pending")
    assert stack.metric("gateway", "minqing_open311_errors_total", endpoint="requests",
                        status="400") == before + 2


# --- per-partner keys and the per-partner rate ------------------------------------------------

def test_a_key_issued_to_a_partner_files_as_that_partner_until_revoked(stack, capsys,
                                                                      monkeypatch):
    from services.identity import api_keys

    # Given a key issued with the command-line tool
    monkeypatch.setenv("DB_URI", stack.st.env["DB_URI"])
    assert api_keys.main(["issue", DEMO_PARTNER, "e2e test key"]) == 0
    issued = yaml.safe_load(capsys.readouterr().out)
    stored = stack.scalar("SELECT key_hash FROM identity.api_keys WHERE id = :i",
                          i=issued["id"])
    assert stored and issued["api_key"] not in stored
    # When the partner files with it, it is accepted as theirs
    r = file_request(stack, api_key=issued["api_key"])
    assert r.status_code == 200, r.text
    # And once revoked, it is refused
    assert api_keys.main(["revoke", issued["id"]]) == 0
    assert file_request(stack, api_key=issued["api_key"]).status_code == 403


@pytest.fixture
def tight_limit(stack):
    # 3 at once, then 1 a minute: the 4th of a burst is refused whatever the timing
    stack.restart("gateway", REPORT_BURST="3", REPORT_RATE_PER_MIN="1")
    yield
    stack.restart("gateway")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_partners_burst_beyond_its_rate_is_a_429_saying_when_to_retry(stack, tight_limit,
                                                                        fmt):
    answers = [file_request(stack, fmt) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    code = (answers[3].json()[0]["code"] if fmt == "json"
            else int(ET.fromstring(answers[3].content).find("error/code").text))
    assert code == 429
    # And reading is not held back
    assert both(stack, "services")[0] == 200
