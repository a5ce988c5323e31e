"""The marshmallow pieces every service uses read values as the OpenAPI document's JSON
Schema does (issue #12 point 9: schemathesis found `rating: 4.0` refused, although JSON
Schema's integer takes it). Unit tests: no servers."""
import pytest
from marshmallow import Schema, ValidationError

from minqing_kernel.schemas import NotBlank, WholeNumber, is_blank


class Rated(Schema):
    rating = WholeNumber(required=True)


@pytest.mark.parametrize(("given", "read"), [(4, 4), (4.0, 4), (-0.0, 0), (10**15, 10**15)])
def test_a_number_without_a_fraction_is_a_whole_number(given, read):
    assert Rated().load({"rating": given}) == {"rating": read}


@pytest.mark.parametrize("given", [4.5, "4", True, None, [4], float("nan"), float("inf")])
def test_anything_else_is_not(given):
    with pytest.raises(ValidationError):
        Rated().load({"rating": given})


@pytest.mark.parametrize("text", ["", " ", "\t\n", "\f", "\v", "\u3000", "\ufeff", "\u00a0",
                                  "\u2028"])
def test_text_of_ecmascript_white_space_only_is_blank(text):
    assert is_blank(text)
    with pytest.raises(ValidationError):
        NotBlank()(text)


@pytest.mark.parametrize("text", ["a", " 办结 ", "\x1c", "\x1f", "\u200b"])
def test_text_with_a_character_the_documents_pattern_counts_is_not_blank(text):
    # The document's `pattern: '\S'` is ECMAScript's \S: U+001C-U+001F are not space
    # there (Python's str.strip() would take them for space and refuse the text).
    assert not is_blank(text)
    assert NotBlank()(text) == text
