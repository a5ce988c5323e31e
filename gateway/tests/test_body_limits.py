"""What the gateway refuses before parsing or handling a body (issue #10, finding 7):
JSON nested too deep is a 400 problem, never a RecursionError 500."""
from __future__ import annotations

import pytest
from werkzeug.wrappers import Request

from gateway.body import MAX_JSON_DEPTH, body, json_depth
from minqing_kernel.errors import BadRequest


def json_request(text: str) -> Request:
    return Request.from_values(method="POST", path="/v1/reports", data=text.encode(),
                               content_type="application/json")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_json_nested_deeper_than_the_limit_is_a_400_json_too_deep(depth):
    with pytest.raises(BadRequest) as raised:
        body(json_request('{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"))
    assert raised.value.code == "json-too-deep"
    assert str(MAX_JSON_DEPTH) in raised.value.detail_zh


def test_json_at_the_depth_limit_is_read():
    text = '{"a":' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    assert json_depth(body(json_request(text))) == MAX_JSON_DEPTH


@pytest.mark.parametrize("value, depth", [(1, 0), ({}, 1), ([[]], 2),
                                          ({"a": [1, {"b": [2]}]}, 4)])
def test_depth_counts_nested_objects_and_arrays(value, depth):
    assert json_depth(value) == depth
