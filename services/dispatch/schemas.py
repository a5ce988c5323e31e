"""What crosses dispatch's boundary: action requests and feedback in, cases out."""
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

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


# --- supervision: inbox, extensions, callbacks, SLA policies, the report -----------------

INBOX_KINDS = ["yellow_line", "red_line", "reminder", "extension_requested",
               "extension_approved", "extension_refused"]


class InboxQuery(Schema):
    unread = fields.Boolean()
    kind = fields.String(validate=validate.OneOf(INBOX_KINDS))
    cursor = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(validate=validate.Range(1, 100))


class InboxItemView(Schema):
    id = fields.String()
    kind = fields.String()
    case_id = fields.String()
    message = fields.Function(lambda i: {"zh": i.message_zh, "en": i.message_en})
    created_at = fields.DateTime(format="iso")
    read = fields.Function(lambda i: i.read_at is not None)
    read_at = fields.DateTime(format="iso", allow_none=True)


class ExtensionRequest(Schema):
    hours = fields.Float(required=True, validate=validate.Range(min=0.1, max=24 * 30))
    reason = Text(required=True, validate=validate.Length(min=1, max=1000))


class ExtensionDecision(Schema):
    approve = fields.Boolean(required=True, truthy={True}, falsy={False})
    note = Text(validate=validate.Length(max=1000))


class ExtensionView(Schema):
    id = fields.String()
    case_id = fields.String()
    deadline = fields.String(attribute="kind")
    hours = fields.Float()
    reason = fields.String()
    status = fields.String()
    requested_by = fields.String()
    requested_at = fields.DateTime(format="iso")
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(format="iso", allow_none=True)
    note = fields.String(allow_none=True)
    due_at = fields.DateTime(format="iso", allow_none=True)


class CallbackQuery(Schema):
    status = fields.String(load_default="pending",
                           validate=validate.OneOf(["pending", "satisfied", "unsatisfied"]))
    cursor = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(validate=validate.Range(1, 100))


class CallbackRecord(Schema):
    satisfied = fields.Boolean(required=True, truthy={True}, falsy={False})
    note = Text(validate=validate.Length(max=1000))

    @validates_schema
    def unsatisfied_needs_the_reason(self, data, **kwargs):
        if not data.get("satisfied") and not (data.get("note") or "").strip():
            raise ValidationError("an unsatisfied callback needs the reason", "note")


class CallbackView(Schema):
    id = fields.String()
    case_id = fields.String()
    status = fields.String()
    queued_at = fields.DateTime(format="iso")
    recorded_by = fields.String(allow_none=True)
    recorded_at = fields.DateTime(format="iso", allow_none=True)
    note = fields.String(allow_none=True)
    category = fields.String()
    unit_id = fields.String(allow_none=True)
    rating = fields.Integer(allow_none=True)
    reporter_ids = fields.List(fields.String())
    case_status = fields.String()


class PolicyQuery(Schema):
    category = fields.String(validate=validate.Length(max=40))


class PolicyUpdate(Schema):
    # From one second: tests (and drills) run whole ladders in seconds.
    accept_hours = fields.Float(required=True, validate=validate.Range(min=1 / 3600,
                                                                       max=24 * 90))
    resolve_hours = fields.Float(required=True, validate=validate.Range(min=1 / 3600,
                                                                        max=24 * 365))
    yellow_at = fields.Float(load_default=0.75, validate=validate.Range(
        min=0.05, max=0.99))


class PolicyView(Schema):
    category = fields.String()
    priority = fields.String()
    accept_hours = fields.Float()
    resolve_hours = fields.Float()
    yellow_at = fields.Float()


class ReportQuery(Schema):
    unit_id = fields.String(validate=validate.Length(min=1, max=64))
    from_ = fields.AwareDateTime(data_key="from", attribute="from", default_timezone=UTC)
    to = fields.AwareDateTime(default_timezone=UTC)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
