from marshmallow import Schema, fields, validate

from minqing_kernel.schemas import Text


class Credentials(Schema):
    username = Text(required=True, validate=validate.Length(min=1, max=64))
    password = Text(required=True, validate=validate.Length(min=1, max=200))


# --- the account lifecycle (accounts.py); the rules themselves are in codes.py ---------
_PHONE = validate.Regexp(r"^1[3-9][0-9]{9}$", error="A mobile number is 11 digits starting "
                                                    "with 1.")
_CODE = validate.Regexp(r"^[0-9]{6}$", error="A code is 6 digits.")
_NAME = validate.Length(min=1, max=100)
_PASSWORD = validate.Length(min=8, max=128)
STAFF_ROLES = ("patroller", "operator", "handler", "leader", "lawyer", "admin", "discipline")


class SmsCodeRequest(Schema):
    phone = Text(required=True, validate=_PHONE)
    purpose = Text(required=True, validate=validate.OneOf(("sign-up", "sign-in",
                                                           "reset-password")))


class CodeSignIn(Schema):
    phone = Text(required=True, validate=_PHONE)
    code = Text(required=True, validate=_CODE)


class SignUp(CodeSignIn):
    display_name = Text(required=True, validate=_NAME)
    password = Text(required=True, validate=_PASSWORD)


class PasswordReset(CodeSignIn):
    password = Text(required=True, validate=_PASSWORD)


class StaffChange(Schema):
    roles = fields.List(Text(validate=validate.OneOf(STAFF_ROLES)),
                        validate=validate.Length(min=1, max=len(STAFF_ROLES)))
    unit_id = Text(allow_none=True, validate=validate.Length(min=1, max=64))
    display_name = Text(validate=_NAME)
    active = fields.Boolean(truthy={True}, falsy={False})


class StaffAccount(StaffChange):
    username = Text(required=True, validate=validate.Regexp(
        r"^[A-Za-z][A-Za-z0-9_-]{2,63}$", error="3 to 64 letters, digits, - or _, a letter "
                                                "first."))
    display_name = Text(required=True, validate=_NAME)
    roles = fields.List(Text(validate=validate.OneOf(STAFF_ROLES)), required=True,
                        validate=validate.Length(min=1, max=len(STAFF_ROLES)))
    phone = Text(allow_none=True, validate=_PHONE)
    password = Text(required=True, validate=_PASSWORD)


class PasswordChange(Schema):
    current_password = Text(required=True, validate=validate.Length(min=1, max=200))
    new_password = Text(required=True, validate=_PASSWORD)


# --- units and grids, managed by admins (units.py) ---------------------------------------
_UNIT_ID = validate.Regexp(r"^[a-z][a-z0-9-]{1,63}$", error="2 to 64 lowercase letters, "
                                                           "digits or -, a letter first.")


def _leader() -> Text:
    return Text(allow_none=True, validate=validate.Length(min=1, max=64))


class UnitChange(Schema):
    name_zh = Text(validate=validate.Length(min=1, max=100))
    name_en = Text(validate=validate.Length(min=1, max=120))
    leader_id = _leader()


class NewUnit(UnitChange):
    id = Text(required=True, validate=_UNIT_ID)
    kind = Text(required=True, validate=validate.OneOf(
        ("department", "social_org", "volunteer_team", "external")))
    name_zh = Text(required=True, validate=validate.Length(min=1, max=100))
    name_en = Text(required=True, validate=validate.Length(min=1, max=120))


class GridChange(Schema):
    name_zh = Text(validate=validate.Length(min=1, max=100))
    leader_id = _leader()


class NewGrid(GridChange):
    id = Text(required=True, validate=_UNIT_ID)
    name_zh = Text(required=True, validate=validate.Length(min=1, max=100))
