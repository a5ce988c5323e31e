"""Cursor pagination: an opaque cursor over a monotonic seq. Unit tests: no servers."""
import base64
from types import SimpleNamespace

import pytest

from minqing_kernel.errors import BadRequest
from minqing_kernel.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    clamp_limit,
    decode_cursor,
    decode_key_cursor,
    encode_cursor,
    encode_key_cursor,
    page,
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("seq", [0, 1, 42, 10**12])
def test_a_cursor_decodes_to_the_seq_it_was_made_from(seq):
    cursor = encode_cursor(seq)
    assert decode_cursor(cursor) == seq
    assert "=" not in cursor and str(seq) not in cursor  # opaque and URL-safe


def test_no_cursor_means_the_first_page():
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize("cursor", [
    "not a cursor!", "%%%", b64(b"x42"), b64(b"s4x2"), b64(b"s"), b64(b"\xff\xfe"),
    encode_cursor(42)[:-1] + "~"])
def test_a_cursor_the_api_did_not_return_is_a_bad_request(cursor):
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "bad-cursor"
    assert caught.value.to_problem()["status"] == 400


@pytest.mark.parametrize(("asked", "given"), [
    (None, DEFAULT_LIMIT), ("", DEFAULT_LIMIT), (0, 1), (-5, 1), (1, 1), ("50", 50),
    (MAX_LIMIT, MAX_LIMIT), (MAX_LIMIT + 1, MAX_LIMIT), ("100000", MAX_LIMIT)])
def test_the_limit_is_clamped_to_one_to_a_hundred(asked, given):
    assert clamp_limit(asked) == given


def test_a_limit_that_is_not_a_number_is_a_bad_request():
    with pytest.raises(BadRequest) as caught:
        clamp_limit("ten")
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


@pytest.mark.parametrize("raw", [b"s99999999999999999999", b"s9223372036854775808", b"s-1",
                                 b"s+1", b"s 1", b"s\xd9\xa1", b"s1_000", b"s"])
def test_a_cursor_outside_a_bigint_seq_is_a_bad_cursor_not_a_database_error(raw):
    with pytest.raises(BadRequest) as raised:
        decode_cursor(b64(raw))
    assert raised.value.code == "bad-cursor"


def test_the_largest_bigint_is_still_a_cursor():
    assert decode_cursor(encode_cursor(2**63 - 1)) == 2**63 - 1


# --- keyset cursors (a list in another order than seq: issue #12, the case list) --------

@pytest.mark.parametrize(("key", "seq"), [(1_764_567_890_123_456, 7), (None, 3), (-5, 1),
                                          (0, 2**63 - 1)])
def test_a_key_cursor_gives_back_its_key_and_seq(key, seq):
    assert decode_key_cursor(encode_key_cursor(key, seq)) == (key, seq)


@pytest.mark.parametrize("raw", [b"k1", b"k:1", b"kx:1", b"k1:", b"k1:-2", b"s12",
                                 b"k1:9223372036854775808", b"k--1:1", b"k1:1:1"])
def test_a_key_cursor_we_did_not_make_is_a_bad_cursor(raw):
    with pytest.raises(BadRequest) as raised:
        decode_key_cursor(b64(raw))
    assert raised.value.code == "bad-cursor"


def test_a_seq_cursor_is_not_a_key_cursor():
    with pytest.raises(BadRequest):
        decode_key_cursor(encode_cursor(5))
