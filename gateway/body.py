"""The request body, read once the same way for every endpoint: JSON only, an object, its
keys real text, nested at most MAX_JSON_DEPTH deep. Its size was limited before it was
read (minqing_kernel.web)."""
from __future__ import annotations

import json

from minqing_kernel.errors import BadRequest, Problem
from minqing_kernel.metrics import REQUESTS_REFUSED


class UnsupportedMediaType(Problem):
    status = 415
    code = "unsupported-media-type"


def _text_keys(pairs: list) -> dict:
    """JSON's \\u escapes can spell an unpaired surrogate, which is not text: refuse it in
    a key here (values are the schemas' business), before it reaches an error message."""
    for key, _ in pairs:
        key.encode("utf-8")  # UnicodeEncodeError is a ValueError: malformed JSON
    return dict(pairs)


# No request of this API nests deeper than a few levels; 32 leaves room and keeps every
# later walk over the body (marshmallow, the RPC serialiser) far from the recursion limit.
MAX_JSON_DEPTH = 32


def json_depth(value) -> int:
    """How deeply `value` nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((v, depth) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def too_deep(request) -> BadRequest:
    REQUESTS_REFUSED.labels(request.environ.get("minqing.route", "unmatched"),
                            "json-too-deep").inc()
    return BadRequest.of("gateway.json-too-deep", depth=MAX_JSON_DEPTH,
                         code="json-too-deep")


def body(request) -> dict:
    """The request's JSON object. Its size was limited before it was read
    (minqing_kernel.web); its depth is limited here."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType.of("gateway.json-required")
    try:
        data = json.loads(request.get_data(as_text=True) or "null",
                          object_pairs_hook=_text_keys)
    except RecursionError:  # deeper than the parser's own stack: refused the same way
        raise too_deep(request) from None
    except ValueError as exc:
        raise BadRequest.of("gateway.not-json", exc=exc, code="malformed-json") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise too_deep(request)
    if not isinstance(data, dict):
        raise BadRequest.of("gateway.malformed-json", code="malformed-json")
    return data
