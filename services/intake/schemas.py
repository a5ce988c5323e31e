"""What crosses intake's boundary: RPC requests in, reports out."""
from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates_schema
from marshmallow.utils import get_value

from minqing_kernel.media import linked
from minqing_kernel.reference import category_name
from minqing_kernel.schemas import Meaningful, Text, WholeNumber
from services.intake.domain import MAX_ATTACHMENTS


class Location(Schema):
    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)
    lon = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)


class UploadRequest(Schema):
    content_type = Text(required=True, validate=validate.Length(min=3, max=100))
    size = WholeNumber(required=True, validate=validate.Range(min=1))
    filename = Text(validate=validate.Length(max=200))


class ReportSubmission(Schema):
    category = Text(required=True, validate=validate.Length(min=1, max=40))
    description = Text(required=True, validate=[Meaningful(min=2), validate.Length(max=2000)])
    location = fields.Nested(Location, required=True)
    address = Text(validate=validate.Length(max=200), allow_none=True)
    attachments = fields.List(Text(validate=validate.Length(min=1, max=300)),
                              load_default=list, validate=validate.Length(max=MAX_ATTACHMENTS))
    channel = fields.String(validate=validate.OneOf(["app", "phone", "patrol", "partner",
                                                     "open311"]))
    caller_phone = fields.String(validate=validate.Regexp(r"^1\d{10}$"))
    # Answers to the category's Open311 attributes, checked by domain.check_attributes.
    attributes = fields.Dict(keys=Text(validate=validate.Length(min=1, max=60)),
                             values=fields.Raw(), validate=validate.Length(max=30))

    @validates_schema
    def phone_calls_need_a_number(self, data, **kwargs):
        if data.get("channel") == "phone" and not data.get("caller_phone"):
            raise ValidationError("required when channel is phone", "caller_phone")


class AttachmentKeys(Schema):
    keys = fields.List(Text(validate=validate.Length(min=1, max=300)), required=True,
                       validate=validate.Length(max=MAX_ATTACHMENTS))


class AttachmentView(Schema):
    key = fields.String()
    content_type = fields.String()
    size = fields.Integer()


class ReportView(Schema):
    id = fields.String()
    reporter_id = fields.String()
    channel = fields.String()
    category = fields.String()
    category_name = fields.Function(lambda r: category_name(get_value(r, "category"))[0])
    description = fields.String()
    address = fields.String(allow_none=True)
    location = fields.Method("_location")
    attachments = fields.List(fields.Nested(AttachmentView))
    submitted_at = fields.DateTime(format="iso")

    def _location(self, report):
        return {"lat": get_value(report, "lat"), "lon": get_value(report, "lon")}

    @post_dump
    def _media_urls(self, view, **kwargs):
        # Each attachment with the URL a client fetches it through (minqing_kernel/media.py).
        view["attachments"] = linked(view.get("attachments") or [], "reports", view["id"])
        return view


class Open311ReportQuery(Schema):
    """Which reports GET /open311/v2/requests lists: by id (which overrides the rest), or
    by category and submission time; a page of them, newest first."""
    ids = fields.List(fields.UUID(), validate=validate.Length(max=1000))
    categories = fields.List(Text(validate=validate.Length(min=1, max=40)),
                             validate=validate.Length(max=100))
    start = fields.AwareDateTime()
    end = fields.AwareDateTime()
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 1000))


class CallbackToMake(Schema):
    """What dispatch says about a pending callback, for showing its caller's number."""
    callback_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    report_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(1, 1000))
