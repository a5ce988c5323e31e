"""The Open311 server's own rules, without a server: the XML it writes, the errors it
maps problems to, and how it reads dates, pages and attribute fields."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
from werkzeug.datastructures import ImmutableMultiDict

from gateway import open311
from minqing_kernel.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def args(**values) -> ImmutableMultiDict:
    return ImmutableMultiDict(values)


def test_a_list_becomes_elements_named_after_it():
    xml = ET.fromstring(open311.to_xml("service_definition", {
        "service_code": "hazard-facility",
        "attributes": [{"code": "facility", "values": [{"key": "bench", "name": "座椅"}]}]}))
    assert xml.tag == "service_definition"
    assert xml.find("attributes/attribute/values/value/name").text == "座椅"


def test_the_xml_declares_utf8_in_double_quotes():
    assert open311.to_xml("errors", []).startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')


def test_booleans_are_true_or_false_and_null_is_empty():
    xml = ET.fromstring(open311.to_xml("service", {"metadata": True, "keywords": None}))
    assert xml.find("metadata").text == "true" and xml.find("keywords").text is None


def test_characters_xml_cannot_carry_are_replaced_not_emitted():
    body = open311.to_xml("errors", [{"code": 400, "description": "a\x00b\x1bc <d>"}])
    assert ET.fromstring(body).find("error/description").text == "a\ufffdb\ufffdc <d>"


@pytest.mark.parametrize("problem, status", [
    (Invalid("x", "x"), 400), (Conflict("x", "x"), 400), (Forbidden("x", "x"), 403),
    (NotFound("x", "x"), 404), (TooManyRequests("x", "x", retry_after_s=7), 429)])
def test_a_services_problem_keeps_the_status_the_spec_gives_it(problem, status):
    error = open311.from_problem(problem)
    assert error.status == status
    assert error.retry_after_s == (7 if status == 429 else None)


def test_the_error_body_is_the_specs_list_in_the_clients_language():
    error = open311.Open311Error(403, "The api_key is not valid.", "api_key 无效。")
    assert open311.error_response("json", error, "en").get_json() == [
        {"code": 403, "description": "The api_key is not valid."}]
    xml = ET.fromstring(open311.error_response("xml", error, "zh").get_data())
    assert (xml.find("error/code").text, xml.find("error/description").text) == (
        "403", "api_key 无效。")


def test_without_dates_the_window_is_the_last_90_days():
    assert open311.date_window(args(), NOW) == (NOW - timedelta(days=90), NOW)


def test_a_start_alone_opens_90_days_from_it():
    start, end = open311.date_window(args(start_date="2026-01-01T00:00:00+08:00"), NOW)
    assert start == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert end - start == timedelta(days=90)


def test_an_end_alone_closes_90_days_after_its_start():
    start, end = open311.date_window(args(end_date="2026-06-01T00:00:00Z"), NOW)
    assert (end - start, end) == (timedelta(days=90), datetime(2026, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize("given", [
    {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-02T00:00:00Z"},  # 91 days
    {"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
    {"start_date": "2026-01-01"}, {"start_date": "2026-01-01T00:00:00"}, {"end_date": "soon"},
    # `start_date=` is not "no date" (the document's format: date-time refuses it; it
    # was answered as the default window: issue #12 point 9)
    {"start_date": ""}, {"end_date": ""}])
def test_a_window_the_spec_does_not_allow_is_refused(given):
    with pytest.raises(open311.Open311Error) as refused:
        open311.date_window(args(**given), NOW)
    assert refused.value.status == 400


def test_pages_are_1000_by_default_and_count_from_one():
    assert open311.paging(args()) == (0, 1000)
    assert open311.paging(args(page="3", page_size="20")) == (40, 20)


@pytest.mark.parametrize("given", [{"page": "0"}, {"page_size": "1001"}, {"page": "-1"},
                                   {"page_size": "ten"}, {"page": "1e3"}, {"page": ""},
                                   {"page_size": ""}])
def test_a_page_outside_the_range_is_refused(given):
    with pytest.raises(open311.Open311Error):
        open311.paging(args(**given))


def test_attribute_fields_become_answers_and_repeated_brackets_a_list():
    form = ImmutableMultiDict([("attribute[facility]", "bench"), ("service_code", "x"),
                               ("attribute[noise_source][]", "music"),
                               ("attribute[noise_source][]", "traffic"),
                               ("attribute[]", "ignored"), ("attributes[x]", "ignored")])
    assert open311.attribute_answers(form) == {"facility": "bench",
                                               "noise_source": ["music", "traffic"]}


def test_comma_lists_may_repeat_and_are_deduplicated():
    given = ImmutableMultiDict([("status", "open, closed"), ("status", "open")])
    assert open311.comma_list(given, "status") == ["open", "closed"]


def test_times_are_w3_utc_to_the_second():
    assert open311.w3("2026-11-30T20:15:30.123456+08:00") == "2026-11-30T12:15:30Z"
    assert open311.w3(None) is None


def test_a_request_without_a_case_yet_is_open_as_submitted():
    report = {"id": "r1", "category": "dispute-noise", "description": "吵",
              "address": None, "lat": 30.2, "lon": 120.1,
              "submitted_at": "2026-11-30T12:00:00+00:00"}
    view = open311.request_view(report, None, {}, "zh")
    assert (view["status"], view["updated_datetime"], view["expected_datetime"]) == (
        "open", "2026-11-30T12:00:00Z", None)
    assert (view["long"], view["service_name"]) == (120.1, "dispute-noise")


@pytest.mark.parametrize("status", ["open", "closed", "open,closed", "closed,open"])
def test_a_status_filter_of_the_documents_form_is_taken(status):
    assert open311.STATUS_FILTER.fullmatch(status)


@pytest.mark.parametrize("status", ["", "open,", " open", "OPEN", "open,closed,open", "any"])
def test_any_other_status_filter_is_not_of_the_documents_form(status):
    assert not open311.STATUS_FILTER.fullmatch(status)
