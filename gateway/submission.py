"""The id a submitted report will have: one way for both of the gateway's report APIs
(its own POST /v1/reports and Open311's POST requests), so neither imports the other."""
from __future__ import annotations

import uuid

from minqing_kernel.errors import BadRequest

MAX_KEY = 200  # contracts/openapi.yaml: Idempotency-Key, 1 to 200 characters

SUBMISSIONS = uuid.UUID("5b0e7c1e-9d1f-4c55-8a57-6d2b8a1f0c3e")


def submission_id(actor: dict, idempotency_key: str | None) -> str:
    """The id the report will have, fixed here so that a repeat cannot make a second one:
    nameko redelivers an RPC request whose reply was lost (a broker restart), and a phone
    on a bad network resends with the same Idempotency-Key."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    # Refused rather than cut: two keys that differ after the 200th character must not
    # name one report, and an empty key is no key the client could repeat.
    if not 1 <= len(idempotency_key) <= MAX_KEY:
        raise BadRequest.of("gateway.bad-idempotency-key", max=MAX_KEY,
                            code="bad-idempotency-key")
    return str(uuid.uuid5(SUBMISSIONS, f"{actor['id']}\n{idempotency_key}"))
