"""ReportSubmission: what intake accepts over RPC, and what it refuses."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from services.intake.schemas import ReportSubmission

VALID = {"category": "hazard-fire", "description": "楼道里堆满了纸箱，有火灾隐患",
         "location": {"lat": 30.2450, "lon": 120.1860}, "address": "近江东园3幢",
         "attachments": ["uploads/0123456789abcdef0123456789abcdef.jpg"]}


def load(**changes) -> dict:
    payload = {**VALID, **changes}
    return ReportSubmission().load({k: v for k, v in payload.items() if v is not ...})


def errors_of(**changes) -> dict:
    with pytest.raises(ValidationError) as raised:
        load(**changes)
    return raised.value.messages


def test_a_valid_report_is_accepted():
    assert load() == VALID


def test_attachments_default_to_an_empty_list():
    assert load(attachments=...)["attachments"] == []


def test_a_phone_call_with_the_callers_number_is_accepted():
    data = load(channel="phone", caller_phone="13800000001")
    assert data["caller_phone"] == "13800000001"


def test_unknown_fields_are_refused():
    assert "reporter_id" in errors_of(reporter_id="someone-else")


@pytest.mark.parametrize("field", ["category", "location", "description"])
def test_a_required_field_may_not_be_missing(field):
    assert field in errors_of(**{field: ...})


def test_a_description_of_two_chinese_characters_is_a_complete_report():
    assert load(description="漏水")["description"] == "漏水"


@pytest.mark.parametrize("description", ["", "   ", "漏", " 漏 \n", "\u3000漏\u3000"])
def test_a_description_of_less_than_two_characters_besides_spaces_is_refused(description):
    assert "description" in errors_of(description=description)


def test_more_than_nine_attachments_are_refused():
    keys = [f"uploads/{i:032x}.jpg" for i in range(10)]
    assert "attachments" in errors_of(attachments=keys)


def test_nine_attachments_are_fine():
    keys = [f"uploads/{i:032x}.jpg" for i in range(9)]
    assert load(attachments=keys)["attachments"] == keys


@pytest.mark.parametrize("coordinate", ["lat", "lon"])
@pytest.mark.parametrize("value", [float("nan"), "NaN", float("inf")])
def test_coordinates_must_be_real_numbers(coordinate, value):
    location = {**VALID["location"], coordinate: value}
    assert coordinate in errors_of(location=location)["location"]


@pytest.mark.parametrize(("coordinate", "value"), [("lat", 91), ("lon", -181)])
def test_coordinates_must_be_on_the_earth(coordinate, value):
    location = {**VALID["location"], coordinate: value}
    assert coordinate in errors_of(location=location)["location"]


def test_a_phone_call_needs_the_callers_number():
    assert "caller_phone" in errors_of(channel="phone")


def test_a_callers_number_must_be_a_mobile_number():
    assert "caller_phone" in errors_of(channel="phone", caller_phone="0571-1234567")


def test_an_unknown_channel_is_refused():
    assert "channel" in errors_of(channel="wechat")
