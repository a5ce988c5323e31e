"""The event envelope: CloudEvents 1.0 in structured mode, with a JSON Schema per type.

Every event is built and read here, with the CloudEvents SDK, so that an outside
consumer holding only that SDK reads exactly what we write. The `data` of every type is
validated against `contracts/events/<type>.json` when it is emitted and again when it is
consumed: a producer bug fails in the producer's transaction, not in someone's queue.

Audiences. A type's schema in `contracts/events/` is public: it goes to the emitting
service's `<service>.events` exchange, which partner platforms may bind to, so its data
must never name a reporter (ARCHITECTURE: "Reporters stay hidden"). A type whose schema
is in `contracts/events/internal/` is internal: the outbox relay publishes it to
`<service>.internal` and `@consume_event` binds to that exchange, which no partner's
broker user may read (tools/partners.py grants only the `*.events` exchanges); it is left
out of the partner contract (contracts/asyncapi.yaml). That is the one way for a service
to hand another service who reported something: emit an internal type. The place of the
schema decides, so nothing else has to be kept in step (no flag on the outbox row).
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from cloudevents.core.bindings.rabbitmq import (
    RabbitMQMessage,
    from_rabbitmq,
    to_structured,
)
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

CONTENT_TYPE = "application/cloudevents+json"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
MAX_EVENT_BYTES = 256 * 1024
TYPE_PREFIX = "cn.minqing."
PUBLIC, INTERNAL = "public", "internal"
_FORMAT = JSONFormat()


def contracts_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "contracts"
    return Path(os.environ.get("MINQING_CONTRACTS_DIR", default))


def event_type(entity_verb: str, version: int = 1) -> str:
    """`case.assigned` -> `cn.minqing.case.assigned.v1`."""
    return f"{TYPE_PREFIX}{entity_verb}.v{version}"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    source: str
    subject: str | None
    time: datetime
    data: dict
    correlation_id: str | None = None
    # The AMQP `user_id` property of the message it came in, if any. The broker refuses a
    # message whose user_id is not the publishing connection's user, so it says who sent
    # it (a partner platform's own RabbitMQ user); the envelope's `source` does not.
    user_id: str | None = None

    @property
    def service(self) -> str:
        """The emitting service, from `source` = /minqing/<service>."""
        return self.source.rsplit("/", 1)[-1]


class EventRejected(Exception):
    """A message that is not a valid event of a known type; the reason goes to the DLQ."""

    def __init__(self, reason: str, detail: str, detail_zh: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.detail_zh = detail_zh  # for a sender who reads Chinese (a partner platform)


@cache
def _schema_path(type_: str) -> tuple[str, Path] | None:
    """(audience, schema file) of a known type, or None."""
    events = contracts_dir() / "events"
    for audience, path in ((PUBLIC, events / f"{type_}.json"),
                           (INTERNAL, events / INTERNAL / f"{type_}.json")):
        if path.exists():
            return audience, path
    return None


@cache
def _validator(type_: str):
    """A compiled validator for the type's schema. jsonschema-rs, because every report
    is validated three times on its way (emitted, consumed, its case emitted): it is
    ~150x faster than the pure-Python validator and implements the same drafts."""
    found = _schema_path(type_)
    if found is None:
        return None
    schema = json.loads(found[1].read_text(encoding="utf-8"))
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def audience(type_: str) -> str:
    """PUBLIC (partners may read it) or INTERNAL (only our services), by where its schema
    is; an unknown type counts as public, so its exchange is the one it always was."""
    found = _schema_path(type_)
    return found[0] if found else PUBLIC


def exchange_for(service: str, type_: str) -> str:
    """The exchange `service` publishes events of `type_` to, and consumers bind to."""
    return f"{service}.{INTERNAL if audience(type_) == INTERNAL else 'events'}"


def known_type(type_: str) -> bool:
    return _validator(type_) is not None


def validate_data(type_: str, data: Any) -> None:
    validator = _validator(type_)
    if validator is None:
        raise EventRejected("unknown-type", f"no schema for event type {type_!r}")
    try:
        validator.validate(data)
    except jsonschema_rs.ValidationError as error:
        where = "/".join(str(p) for p in error.instance_path) or "(root)"
        raise EventRejected("schema-violation",
                            f"{type_} data at {where}: {error.message}") from None


def new_event(service: str, type_: str, subject: str | None, data: dict,
              correlation_id: str | None = None) -> Event:
    validate_data(type_, data)
    return Event(id=str(uuid.uuid4()), type=type_, source=f"/minqing/{service}",
                 subject=subject, time=datetime.now(UTC), data=data,
                 correlation_id=correlation_id)


def to_body(event: Event) -> bytes:
    """The structured-mode JSON body, exactly as it goes on the wire."""
    attributes = {
        "id": event.id, "type": event.type, "source": event.source,
        "time": event.time, "datacontenttype": "application/json",
    }
    if event.subject is not None:
        attributes["subject"] = event.subject
    if event.correlation_id:
        attributes["correlationid"] = event.correlation_id
    return to_structured(CloudEvent(attributes=attributes, data=event.data), _FORMAT).body


def from_message(content_type: str | None, headers: dict | None, body: bytes) -> Event:
    """Read and validate one broker message; raise EventRejected with a reason if it is not."""
    if content_type != CONTENT_TYPE:
        raise EventRejected("wrong-content-type",
                            f"expected {CONTENT_TYPE}, got {content_type!r}")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if len(body) > MAX_EVENT_BYTES:
        raise EventRejected("too-large", f"{len(body)} bytes; events are at most "
                                         f"{MAX_EVENT_BYTES} (media go to the object store)")
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventRejected("not-json", str(exc)[:200]) from None
    # The SDK fills in a missing id (a fresh UUID) and specversion: a redelivered event
    # without an id would look new every time and defeat idempotent consumption.
    missing = [a for a in REQUIRED_ATTRIBUTES if not isinstance(raw, dict) or not raw.get(a)]
    if missing:
        raise EventRejected("bad-envelope", f"missing attributes: {', '.join(missing)}")
    try:
        ce = from_rabbitmq(RabbitMQMessage(headers={k: str(v) for k, v in (headers or {}).items()},
                                           content_type=content_type, body=body), _FORMAT)
    except Exception as exc:  # the SDK raises several types for a bad envelope
        raise EventRejected("bad-envelope", str(exc)[:300]) from None
    type_ = ce.get_type()
    if not type_.startswith(TYPE_PREFIX) or not known_type(type_):
        raise EventRejected("unknown-type", f"no schema for event type {type_!r}")
    data = ce.get_data()
    validate_data(type_, data)
    time = ce.get_time() or datetime.now(UTC)
    return Event(id=ce.get_id(), type=type_, source=ce.get_source(), subject=ce.get_subject(),
                 time=time, data=data, correlation_id=ce.get_extension("correlationid"))
