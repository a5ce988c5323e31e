"""What crosses rewards' boundary: requests in (RPC, from the gateway), views out."""
from marshmallow import Schema, fields, validate

from minqing_kernel.schemas import Text, WholeNumber
from services.rewards import domain


class FlagRequest(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=500))


class RuleChange(Schema):
    # Whole numbers as JSON reads them (500.0 is 500), as the document's `integer` says.
    min_fen = WholeNumber(required=True, validate=validate.Range(domain.MIN_FEN, domain.MAX_FEN))
    max_fen = WholeNumber(required=True, validate=validate.Range(domain.MIN_FEN, domain.MAX_FEN))


class RewardAction(Schema):
    action = fields.String(required=True,
                           validate=validate.OneOf(["propose", "approve", "refuse"]))
    amount_fen = WholeNumber(validate=validate.Range(domain.MIN_FEN, domain.MAX_FEN))
    reason = Text(validate=validate.Length(max=500), allow_none=True)


class PayoutAction(Schema):
    action = fields.String(required=True, validate=validate.OneOf(domain.PAYOUT_ACTIONS))
    note = Text(validate=validate.Length(max=500), allow_none=True)


class Page(Schema):
    cursor = fields.String()
    limit = fields.Integer(validate=validate.Range(1, 100))


class RewardQuery(Page):
    status = fields.String(validate=validate.OneOf(domain.REWARD_STATUSES))


class PayoutQuery(Page):
    status = fields.String(validate=validate.OneOf(domain.PAYOUT_STATUSES))
    batch_id = fields.UUID()


class LeaderboardQuery(Schema):
    period = fields.String(load_default="month", validate=validate.OneOf(["month", "year"]))
    at = fields.String(validate=validate.Regexp(r"^\d{4}(-\d{2})?$"))
    community_id = Text(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=10, validate=validate.Range(1, 100))
