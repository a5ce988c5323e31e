"""What crosses integration365's boundaries: the partner's Open311 answers in (read
leniently: unknown fields ignored, ids as strings or numbers), the simulator's knobs in,
a hand-over out (RPC)."""
from marshmallow import EXCLUDE, Schema, fields, validate

from minqing_kernel.schemas import Text


class RemoteId(fields.String):
    """Open311 servers send ids as strings or numbers; we keep strings."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class Open311Answer(_Lenient):
    """One item of the answer to POST requests: an id, or a token to resolve later."""
    service_request_id = RemoteId(validate=validate.Length(min=1, max=200))
    token = RemoteId(validate=validate.Length(min=1, max=200))


class Open311Request(_Lenient):
    service_request_id = RemoteId(required=True, validate=validate.Length(min=1, max=200))
    status = fields.String(load_default="open")
    status_notes = Text(allow_none=True, load_default=None)
    # Extensions: the partner's finer status, and our reference echoed back.
    detail_status = fields.String(allow_none=True, load_default=None)
    minqing_ref = fields.String(allow_none=True, load_default=None)


class Open311Update(_Lenient):
    """One item of the `servicerequestupdates` extension."""
    update_id = RemoteId(required=True, validate=validate.Length(min=1, max=200))
    service_request_id = RemoteId(required=True, validate=validate.Length(min=1, max=200))
    status = fields.String(load_default="")
    description = Text(allow_none=True, load_default=None)
    updated_datetime = fields.AwareDateTime(required=True)


class SimulatorKnobs(Schema):
    """POST /_sim/config: any subset of the knobs (services/integration365/simulator.py)."""
    fail_rate = fields.Float(validate=validate.Range(0, 1))
    error_status = fields.Integer(validate=validate.Range(400, 599))
    delay_s = fields.Float(validate=validate.Range(0, 120))
    down = fields.Boolean()
    lose_responses = fields.Integer(validate=validate.Range(0, 1000))
    auto_progress = fields.Boolean()
    step_s = fields.Float(validate=validate.Range(0.01, 86400))
    reject_when = fields.String(validate=validate.Length(max=200))
    answer_with_token = fields.Boolean()


class HandoverView(Schema):
    case_id = fields.String()
    partner = fields.String()
    state = fields.String()
    remote_id = fields.String(allow_none=True)
    round = fields.Integer()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime()
    last_error = fields.String(allow_none=True)
    last_update_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()
