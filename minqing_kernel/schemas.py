"""Marshmallow pieces every service's schemas use."""
from marshmallow import fields


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
