"""contracts/asyncapi.yaml read as a partner would: which message travels on an exchange
with a routing key, and whether a message body is what the contract says it is.

Used by tests/contract/test_asyncapi.py and by the session's check that every event the
test suite emitted matches the contract (tests/fixtures.py).
"""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
DOCUMENT = CONTRACTS / "asyncapi.yaml"


@cache
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


def resolve(ref: str, base: Path = DOCUMENT) -> object:
    """A $ref of the document: `#/json/pointer` or a file relative to it."""
    target, _, pointer = ref.partition("#")
    node = (json.loads((base.parent / target).read_text(encoding="utf-8")) if target
            else document())
    for part in [p for p in pointer.split("/") if p]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def routes() -> dict[tuple[str, str], dict]:
    """(exchange, routing key) -> the message (resolved) the contract says travels there."""
    out = {}
    for channel in document()["channels"].values():
        amqp = channel.get("bindings", {}).get("amqp", {})
        if amqp.get("is") != "routingKey":
            continue
        for message in channel["messages"].values():
            out[(amqp["exchange"]["name"], channel["address"])] = resolve(message["$ref"])
    return out


def _inline(schema: object) -> object:
    """The schema with every $ref replaced by what it points to (they are acyclic)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(resolve(schema["$ref"]))
        return {k: _inline(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v) for v in schema]
    return copy.deepcopy(schema)


@cache
def _validator(exchange: str, routing_key: str) -> Draft202012Validator | None:
    message = routes().get((exchange, routing_key))
    if message is None:
        return None
    schema = _inline(message["payload"])
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def mismatches(exchange: str, routing_key: str, content_type: str | None,
               body: bytes) -> list[str]:
    """Why this message is not what the contract promises on (exchange, routing key)."""
    where = f"{exchange} / {routing_key}"
    validator = _validator(exchange, routing_key)
    if validator is None:
        return [f"{where}: the contract has no channel for it"]
    problems = []
    if content_type != document()["defaultContentType"]:
        problems.append(f"{where}: content type {content_type!r}")
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        return problems + [f"{where}: not JSON ({exc})"]
    for error in validator.iter_errors(envelope):
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"{where} event {envelope.get('id')}: {path}: {error.message}")
    return problems


def emitted_mismatches(engine) -> tuple[int, list[str]]:
    """Check every event the stack's services emitted (each service's outbox keeps what it
    published for a day) against the contract, by the exchange and routing key the relay
    publishes it with: `<service>.events` and its type. The outbox, not a queue tapped on
    the exchanges, because tests publish deliberately broken messages there too."""
    import sqlalchemy as sa

    from minqing_kernel import events as ev

    count, problems = 0, []
    with engine.connect() as conn:
        schemas = conn.execute(sa.text(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'outbox' ORDER BY 1")).scalars().all()
        for schema in schemas:
            rows = conn.execute(sa.text(
                f'SELECT type, body FROM "{schema}".outbox ORDER BY id')).all()
            for type_, body in rows:
                if ev.audience(type_) == ev.INTERNAL:
                    continue  # published to <service>.internal: not in the partner contract
                count += 1
                problems += mismatches(f"{schema}.events", type_,
                                       document()["defaultContentType"], bytes(body))
    return count, problems
