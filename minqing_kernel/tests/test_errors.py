"""Problems: one error shape for people (RFC 9457, in Chinese and English) that crosses
nameko RPC typed. Unit tests: no servers.
"""
import json

import marshmallow as ma
import pytest
from marshmallow import fields
from nameko.exceptions import deserialize, serialize

from minqing_kernel import errors
from minqing_kernel.errors import Conflict, Invalid, NotFound, Problem, field_errors


def test_a_problem_body_has_the_rfc9457_members_in_both_languages():
    # Given a conflict raised by a service
    problem = Conflict("The case is already closed.", "案卷已结案。", code="case-closed")

    # When the gateway renders it
    body = problem.to_problem(instance="/v1/cases/42/actions")

    # Then it reads in both languages with a stable type
    assert body == {
        "type": "/problems/case-closed", "title": "Not possible now",
        "title_zh": "当前状态不允许该操作", "status": 409,
        "detail": "The case is already closed.", "detail_zh": "案卷已结案。",
        "instance": "/v1/cases/42/actions",
    }


def test_a_problem_body_lists_field_errors_only_when_there_are_some():
    fields_at_fault = [{"field": "location.lat", "message": "Must be at most 90."}]
    assert Invalid("bad", "有误", errors=fields_at_fault).to_problem()["errors"] == \
        fields_at_fault
    assert "errors" not in NotFound("no such case", "案卷不存在").to_problem()


def test_a_problem_without_a_code_uses_its_class_code():
    body = NotFound("no such case", "案卷不存在").to_problem()
    assert body["type"] == "/problems/not-found" and body["status"] == 404


@pytest.mark.parametrize("cls", [
    errors.Problem, errors.Invalid, errors.BadRequest, errors.Unauthorized,
    errors.Forbidden, errors.NotFound, errors.Conflict, errors.TooLarge, errors.Unavailable])
def test_a_problem_crosses_nameko_rpc_as_the_same_class(cls):
    # Given a problem raised in a service, with field errors and its own code
    raised = cls("The note is required.", "请填写说明。",
                 errors=[{"field": "note", "message": "required"}], code="note-required")

    # When nameko serialises it into the RPC reply and the caller deserialises it
    wire = json.loads(json.dumps(serialize(raised)))
    received = deserialize(wire)

    # Then the caller holds the same kind of problem, not a RemoteError
    assert type(received) is cls
    assert isinstance(received, Problem)
    assert received.code == "note-required"
    assert received.status == cls.status
    assert (received.detail_en, received.detail_zh) == ("The note is required.", "请填写说明。")
    assert received.errors == [{"field": "note", "message": "required"}]
    assert received.to_problem() == raised.to_problem()


def test_a_problem_without_a_code_keeps_its_class_code_across_rpc():
    received = deserialize(json.loads(json.dumps(serialize(NotFound("gone", "不存在")))))
    assert type(received) is NotFound and received.code == "not-found"


class Attachment(ma.Schema):
    key = fields.String(required=True)
    size = fields.Integer()


class Location(ma.Schema):
    lat = fields.Float(required=True)


class ReportIn(ma.Schema):
    location = fields.Nested(Location, required=True)
    attachments = fields.List(fields.Nested(Attachment))
    tags = fields.List(fields.String())


def marshmallow_messages(payload: dict) -> dict:
    with pytest.raises(ma.ValidationError) as caught:
        ReportIn().load(payload)
    return caught.value.messages


def test_field_errors_name_nested_fields_with_dotted_paths():
    messages = marshmallow_messages({"location": {}})
    assert field_errors(messages) == [
        {"field": "location.lat", "message": "Missing data for required field.",
         "message_zh": "必须填写。"}]


def test_field_errors_name_list_items_by_their_index():
    # Given marshmallow's messages for the second attachment and the second tag
    messages = marshmallow_messages({"location": {"lat": 30.2},
                                     "attachments": [{"key": "a"}, {"size": "big"}],
                                     "tags": ["ok", 3]})

    # Then each message names the item by its index, in one notation
    assert sorted(field_errors(messages), key=lambda e: (e["field"], e["message"])) == [
        {"field": "attachments[1].key", "message": "Missing data for required field.",
         "message_zh": "必须填写。"},
        {"field": "attachments[1].size", "message": "Not a valid integer.",
         "message_zh": "应为整数。"},
        {"field": "tags[1]", "message": "Not a valid string.", "message_zh": "应为文字。"},
    ]


def test_field_errors_give_one_entry_per_message():
    messages = {"description": ["Too long.", "Contains a phone number."], "_schema": "Bad."}
    unknown = "填写内容有误。"  # messages the catalogue does not know get a general one
    assert field_errors(messages) == [
        {"field": "description", "message": "Too long.", "message_zh": unknown},
        {"field": "description", "message": "Contains a phone number.", "message_zh": unknown},
        {"field": "_schema", "message": "Bad.", "message_zh": unknown},
    ]
