"""Marshmallow pieces every service's schemas use."""
import re

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
class WholeNumber(fields.Integer):
    """An integer as JSON Schema means it: any number with no fractional part, so `4.0`
    is 4 (JSON does not tell 4 from 4.0, and JSON Schema's `integer` takes both). A string
    ("4") and a boolean are not numbers and are refused, as the schema refuses them;
    marshmallow's strict Integer refuses 4.0, its lax one takes "4"."""

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


# What JSON Schema's `pattern: '\S'` means (ECMAScript's \s: WhiteSpace and LineTerminator),
# which is not Python's \s (that one also counts U+001C-U+001F as space, and not U+FEFF):
# a field the document says needs "something not blank" is checked with the same set.
ECMA_SPACE = "\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_NOT_SPACE = re.compile(f"[^{ECMA_SPACE}]")


def is_blank(text: str | None) -> bool:
    """True unless `text` has a character the document's `pattern: '\\S'` counts."""
    return not text or _NOT_SPACE.search(text) is None


class NotBlank(validate.Validator):
    """The document's `pattern: '\\S'`, as a marshmallow validator."""

    error = "Must not be blank."

    def __call__(self, value: str) -> str:
        if is_blank(value):
            raise ValidationError(self.error)
        return value
