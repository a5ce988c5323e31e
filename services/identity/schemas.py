from marshmallow import Schema, validate

from minqing_kernel.schemas import Text


class Credentials(Schema):
    username = Text(required=True, validate=validate.Length(min=1, max=64))
    password = Text(required=True, validate=validate.Length(min=1, max=200))
