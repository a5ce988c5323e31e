"""What crosses dispatch's boundary: action requests and feedback in, cases out."""
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates_schema

from minqing_kernel.media import linked
from minqing_kernel.reference import category_name
from minqing_kernel.schemas import NotBlank, Text, WholeNumber, is_blank
from services.dispatch import domain
from services.dispatch.domain import ACTION_ZH, ACTIONS, STATUS_ZH

UUID_TEXT = validate.Regexp(r"^[0-9a-fA-F-]{32,36}$", error="not a case id")


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
    priority = fields.String(validate=validate.OneOf(domain.PRIORITIES))  # set_priority
    target_case_id = fields.String(validate=UUID_TEXT)                    # merge
    partner = fields.String(validate=validate.Length(min=1, max=64))      # escalate_external


class DuplicateQuery(Schema):
    radius_m = fields.Integer(load_default=domain.DUPLICATE_RADIUS_M,
                              validate=validate.Range(1, 5000))
    days = fields.Integer(load_default=domain.DUPLICATE_DAYS, validate=validate.Range(1, 90))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class RuleRequest(Schema):
    category = fields.String(required=True, validate=validate.Length(min=1, max=40))
    community = fields.String(required=True, validate=validate.Length(min=1, max=64))
    unit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    reason_zh = Text(required=True, validate=[validate.Length(min=1, max=200), NotBlank()])
    reason_en = Text(required=True, validate=[validate.Length(min=1, max=200), NotBlank()])


class DecisionRequest(Schema):
    decision = fields.String(required=True,
                             validate=validate.OneOf(["create_project", "no_project"]))
    answer = Text(required=True, validate=validate.Length(min=1, max=2000))
    title = Text(validate=validate.Length(min=1, max=200))
    budget = fields.Float(validate=validate.Range(min=0, max=1e11), allow_nan=False)
    also_case_ids = fields.List(fields.String(validate=UUID_TEXT), load_default=list,
                                validate=validate.Length(max=50))


class ProjectQuery(Schema):
    status = fields.String(validate=validate.OneOf(domain.PROJECT_STATUSES))
    cursor = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(validate=validate.Range(1, 100))


class ProjectUpdate(Schema):
    status = fields.String(required=True, validate=validate.OneOf(domain.PROJECT_STATUSES))


class WishQuery(Schema):
    claimed = fields.Boolean()
    cursor = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(validate=validate.Range(1, 100))


class FulfilRequest(Schema):
    note = Text(required=True, validate=validate.Length(min=1, max=2000))
    attachments = fields.List(fields.Nested(Attachment), load_default=list,
                              validate=validate.Length(max=9))


class FeedbackRequest(Schema):
    rating = WholeNumber(required=True, validate=validate.Range(1, 5))
    comment = Text(validate=validate.Length(max=1000))


CASE_SORTS = ("oldest", "newest", "urgent")


class CaseQuery(Schema):
    """GET /v1/cases: filters (all optional, combined with AND), one sort, a page."""
    status = fields.String(validate=validate.OneOf(sorted(STATUS_ZH)))
    category = Text(validate=validate.Length(min=1, max=40))
    community = Text(validate=validate.Length(min=1, max=64))  # the community it happened in
    unit = Text(validate=validate.Length(min=1, max=64))       # the unit handling it
    priority = fields.String(validate=validate.OneOf(domain.PRIORITIES))
    # past the deadline it is running against now (true), or not (false)
    overdue = fields.Boolean(truthy={"true", True}, falsy={"false", False})
    opened_from = fields.AwareDateTime()  # opened at or after
    opened_to = fields.AwareDateTime()    # opened before
    sort = fields.String(load_default="oldest", validate=validate.OneOf(CASE_SORTS))
    cursor = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(validate=validate.Range(1, 100))


class UnitNames(Schema):
    """The case's unit and community by their public Chinese names, as dispatch's copy of
    identity's units has them now (an admin may add or rename a unit: units.py), so the
    view is made with that copy: `CaseView(units)`."""
    unit_name = fields.Method("_unit_name")
    community_name = fields.Method("_community_name")

    def __init__(self, units: dict, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def _name(self, unit_id: str | None) -> str | None:
        unit = self.units.get(unit_id) if unit_id else None
        return unit.name_zh if unit is not None else None

    def _unit_name(self, case) -> str | None:
        return self._name(case.unit_id)

    def _community_name(self, case) -> str | None:
        return self._name(case.community_id)


class CaseView(UnitNames):
    id = fields.String()
    status = fields.String()
    status_zh = fields.Function(lambda c: STATUS_ZH[c.status])
    priority = fields.String()
    category = fields.String()
    # What people read: the category, the unit and the community by their Chinese names
    # (the unit's and the community's: UnitNames).
    category_name = fields.Function(lambda c: category_name(c.category)[0])
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
    suggestion_explanation = fields.Function(lambda c: c.suggestion_rule)
    merged_into = fields.String(allow_none=True)
    return_count = fields.Integer()
    return_reason = fields.String(allow_none=True)
    # from the second 退单 on, the operator decides (reassign, transfer, escalate, close)
    needs_operator_decision = fields.Function(
        lambda c: c.status == domain.RETURNED and c.return_count >= domain.REPEATED_RETURNS)
    partner = fields.String(allow_none=True)
    wish_claimed_by = fields.String(allow_none=True)
    project_id = fields.String(allow_none=True)

    @post_dump
    def _media_urls(self, view, **kwargs):
        # Each photo with the URL a client fetches it through (minqing_kernel/media.py).
        view["attachments"] = linked(view.get("attachments") or [], "cases", view["id"])
        view["result_attachments"] = linked(view.get("result_attachments"), "cases",
                                            view["id"])
        return view


class WishView(UnitNames):
    """A wish as the volunteer board shows it: what and where, never who asked."""
    id = fields.String()
    status = fields.String()
    category = fields.String()
    # What people read: the category, the unit and the community by their Chinese names
    # (the unit's and the community's: UnitNames).
    category_name = fields.Function(lambda c: category_name(c.category)[0])
    description = fields.String()
    address = fields.String(allow_none=True)
    location = fields.Function(lambda c: {"lat": c.lat, "lon": c.lon})
    attachments = fields.Raw()
    opened_at = fields.DateTime(format="iso")
    claimed_by = fields.String(attribute="wish_claimed_by", allow_none=True)
    claimed_at = fields.DateTime(attribute="wish_claimed_at", format="iso", allow_none=True)
    result = fields.String(allow_none=True)

    @post_dump
    def _media_urls(self, view, **kwargs):
        # Volunteers see a wish on the board, not the case: its photos open from there.
        view["attachments"] = linked(view.get("attachments") or [], "wishes", view["id"])
        return view


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
        if not data.get("satisfied") and is_blank(data.get("note")):
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
    # phone: the caller has no app; an operator may be shown their number (issue #12)
    channel = fields.String()


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
