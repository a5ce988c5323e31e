"""The id a submitted report will have: one way for both of the gateway's report APIs
(its own POST /v1/reports and Open311's POST requests), so neither imports the other."""
from __future__ import annotations

import uuid

SUBMISSIONS = uuid.UUID("5b0e7c1e-9d1f-4c55-8a57-6d2b8a1f0c3e")


def submission_id(actor: dict, idempotency_key: str | None) -> str:
    """The id the report will have, fixed here so that a repeat cannot make a second one:
    nameko redelivers an RPC request whose reply was lost (a broker restart), and a phone
    on a bad network resends with the same Idempotency-Key."""
    if idempotency_key:
        return str(uuid.uuid5(SUBMISSIONS, f"{actor['id']}\n{idempotency_key[:200]}"))
    return str(uuid.uuid4())
