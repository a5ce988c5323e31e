"""Cursor pagination: a cursor over a monotonic seq, exactly as the document declares it
(`^[0-9]{1,18}$`), and a page size of 1 to 100. Unit tests: no servers."""
import base64
import re
from types import SimpleNamespace

import pytest

from minqing_kernel.errors import BadRequest
from minqing_kernel.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_cursor,
    decode_key_cursor,
    encode_cursor,
    encode_key_cursor,
    page,
    page_limit,
)
from tools.stack import ROOT

DECLARED = re.compile(r"^[0-9]{1,18}$")  # contracts/openapi.yaml, parameters.Cursor


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("seq", [0, 1, 42, 10**12, 10**18 - 1])
def test_a_cursor_decodes_to_the_seq_it_was_made_from_and_is_of_the_declared_form(seq):
    cursor = encode_cursor(seq)
    assert decode_cursor(cursor) == seq
    assert DECLARED.match(cursor)


def test_the_declared_cursor_form_is_the_documents():
    assert "pattern: '^[0-9]{1,18}$'" in (ROOT / "contracts" / "openapi.yaml").read_text(
        encoding="utf-8")


@pytest.mark.parametrize("cursor", ["0", "000000000000000000", "999999999999999999"])
def test_every_cursor_the_document_allows_is_taken(cursor):
    # (a schema-valid cursor was refused: issue #12 point 9)
    assert decode_cursor(cursor) == int(cursor)


def test_no_cursor_means_the_first_page():
    assert decode_cursor(None) is None


@pytest.mark.parametrize("cursor", [
    "", "not a cursor!", "%%%", "-1", "+1", " 1", "1_000", "\u0661", "1" * 19,
    "9223372036854775808", "99999999999999999999", b64(b"s42")])
def test_a_cursor_the_document_does_not_allow_is_a_bad_request(cursor):
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "bad-cursor"
    assert caught.value.to_problem()["status"] == 400


@pytest.mark.parametrize(("asked", "given"), [
    (None, DEFAULT_LIMIT), (1, 1), ("50", 50), (MAX_LIMIT, MAX_LIMIT), ("100", 100)])
def test_a_page_size_from_one_to_a_hundred_is_taken(asked, given):
    assert page_limit(asked) == given


@pytest.mark.parametrize("asked", ["", "ten", 0, -5, "0", MAX_LIMIT + 1, "101", "100000",
                                   " 5", "1_0", "\uff15", True, 5.5])
def test_any_other_page_size_is_a_bad_request_not_quietly_changed(asked):
    # (limit=101 was answered as if 100: issue #12 point 9)
    with pytest.raises(BadRequest) as caught:
        page_limit(asked)
    assert caught.value.code == "bad-limit"


def rows(*seqs):
    return [SimpleNamespace(seq=s, name=f"row{s}") for s in seqs]


def test_a_page_with_more_rows_behind_it_has_a_cursor_to_the_last_item_shown():
    # Given limit+1 rows were fetched (the extra one says there is more)
    result = page(rows(1, 2, 3), limit=2, view=lambda r: r.name)

    # Then only `limit` items are shown, and the cursor continues after the last of them
    assert result["items"] == ["row1", "row2"]
    assert decode_cursor(result["next_cursor"]) == 2


@pytest.mark.parametrize("seqs", [(1, 2), (1,), ()])
def test_the_last_page_has_no_cursor(seqs):
    result = page(rows(*seqs), limit=2, view=lambda r: r.seq)
    assert result["items"] == list(seqs)
    assert result["next_cursor"] is None


# --- keyset cursors (a list in another order than seq: issue #12, the case list) --------
KEY_DECLARED = re.compile(r"^([0-9]{1,18}|(-?[0-9]{1,18}|n)\.[0-9]{1,18})$")  # KeyCursor


@pytest.mark.parametrize(("key", "seq"), [(1_764_567_890_123_456, 7), (None, 3), (-5, 1),
                                          (0, 10**18 - 1)])
def test_a_key_cursor_gives_back_its_key_and_seq_and_is_one_the_document_allows(key, seq):
    cursor = encode_key_cursor(key, seq)
    assert KEY_DECLARED.match(cursor)
    assert decode_key_cursor(cursor) == (key, seq)


def test_a_seq_cursor_reads_as_a_key_cursor_with_no_key():
    # a client holding a cursor of the same list in `seq` order gets a page, not a 400
    assert decode_key_cursor(encode_cursor(5)) == (None, 5)


@pytest.mark.parametrize("raw", ["k1", "1.", ".1", "x.1", "1.-2", "--1.1", "1.1.1",
                                 "1.1234567890123456789", ""])
def test_a_key_cursor_the_document_does_not_allow_is_a_bad_cursor(raw):
    assert not KEY_DECLARED.match(raw)
    with pytest.raises(BadRequest) as raised:
        decode_key_cursor(raw)
    assert raised.value.code == "bad-cursor"
