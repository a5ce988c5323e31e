"""Marshmallow pieces every service's schemas use."""
from marshmallow import ValidationError, fields, validate


class Text(fields.String):
    """A string that is text PostgreSQL can store and a response can carry: its text type
    cannot hold NUL (U+0000), and an unpaired surrogate (which JSON's \\u escapes can
    spell) is not Unicode text at all, cannot be encoded as UTF-8. Either is refused as
    invalid input here, not left to fail in the database or in a reply."""

    default_error_messages = {"nul": "Must not contain the NUL character (U+0000).",
                              "unicode": "Must be valid Unicode text."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("unicode") from None
        return text


class Meaningful(validate.Validator):
    """At least `min` characters once the spaces around are trimmed: a report of two
    Chinese characters (漏水, "a leak") is a complete one, while spaces alone say nothing.
    Characters, not bytes: a CJK character counts as one, as people count them."""

    message = "Must have at least {min} characters besides spaces."

    def __init__(self, min: int = 2):  # noqa: A002 (marshmallow's own name for it)
        self.min = min

    def __call__(self, value: str) -> str:
        # str.strip() trims what Python's regex \s matches, so the API document's pattern
        # for two (\S[\s\S]*\S), as schemathesis reads it, agrees with this check.
        if len(value.strip()) < self.min:
            raise ValidationError(self.message.format(min=self.min))
        return value
