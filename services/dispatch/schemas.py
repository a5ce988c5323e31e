"""What crosses dispatch's boundary: action requests and feedback in, cases out."""
from marshmallow import Schema, fields, validate

from minqing_kernel.schemas import Text
from services.dispatch.domain import ACTION_ZH, ACTIONS, STATUS_ZH


class Attachment(Schema):
    """An object already checked by intake (present, owned, of an allowed type)."""
    key = fields.String(required=True, validate=validate.Length(min=1, max=300))
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)


class ActionRequest(Schema):
    action = fields.String(required=True, validate=validate.OneOf(sorted(ACTIONS)))
    unit_id = Text(validate=validate.Length(min=1, max=64))
    note = Text(validate=validate.Length(max=2000))
    result = Text(validate=validate.Length(max=2000))
    attachments = fields.List(fields.Nested(Attachment), load_default=list,
                              validate=validate.Length(max=9))


class FeedbackRequest(Schema):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    comment = Text(validate=validate.Length(max=1000))


class CaseQuery(Schema):
    status = fields.String(validate=validate.OneOf(sorted(STATUS_ZH)))
    cursor = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(validate=validate.Range(1, 100))


class CaseView(Schema):
    id = fields.String()
    status = fields.String()
    status_zh = fields.Function(lambda c: STATUS_ZH[c.status])
    priority = fields.String()
    category = fields.String()
    description = fields.String()
    address = fields.String(allow_none=True)
    location = fields.Function(lambda c: {"lat": c.lat, "lon": c.lon})
    channel = fields.String()
    attachments = fields.Raw()
    report_ids = fields.List(fields.String())
    reporter_ids = fields.List(fields.String())
    community_id = fields.String(allow_none=True)
    suggested_unit_id = fields.String(allow_none=True)
    suggestion_reason = fields.Function(
        lambda c: {"zh": c.suggestion_reason_zh, "en": c.suggestion_reason_en})
    unit_id = fields.String(allow_none=True)
    opened_at = fields.DateTime(format="iso")
    updated_at = fields.DateTime(format="iso")
    accept_due_at = fields.DateTime(format="iso", allow_none=True)
    resolve_due_at = fields.DateTime(format="iso", allow_none=True)
    result = fields.String(allow_none=True)
    result_attachments = fields.Raw(allow_none=True)
    rating = fields.Integer(allow_none=True)
    feedback = fields.String(allow_none=True)


class TrailEntryView(Schema):
    seq = fields.Integer()
    at = fields.DateTime(format="iso")
    action = fields.String()
    action_zh = fields.Function(lambda e: ACTION_ZH.get(e.action, e.action))
    actor_id = fields.String()
    actor_role = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    unit_id = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    attachments = fields.Raw()
    hash = fields.String()


class Open311StatusQuery(Schema):
    """Reports whose cases' state the gateway's Open311 server shows (one page of them)."""
    report_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(max=1000))


class Open311UpdatesQuery(Schema):
    """Trail entries in a time range, for GET /open311/v2/servicerequestupdates."""
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 1000))
