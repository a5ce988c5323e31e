"""contracts/asyncapi.yaml, generated from the event schemas: one command keeps it whole.

    python -m tools.contracts          rewrite contracts/asyncapi.yaml
    python -m tools.contracts --check  exit 1 if it is not what the schemas make

Why generated: every `contracts/events/<type>.json` must appear in the AsyncAPI
document with its exchange and routing key, and services add types often. Written by
hand, a new schema would be missing from the contract until someone noticed; here the
only fact to add by hand is which exchange an entity's events go to (EXCHANGES), and a
type whose entity is not there stops the generator with a message saying so.
(gateway/tests-style parity: tests/contract/test_asyncapi.py checks the file is current,
that every schema is referenced and resolves, and parses it with @asyncapi/parser.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from services.intake.domain import (
    INBOUND_EXCHANGE,
    PARTNER_REPORTS_NAMESPACE,
    PARTNER_USER_PREFIX,
    REJECTIONS_EXCHANGE,
)
from tools.partners import PUBLIC_EXCHANGES

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "contracts"
EVENTS = CONTRACTS / "events"
DOCUMENT = CONTRACTS / "asyncapi.yaml"
AMQP_BINDING = "0.3.0"

# entity -> (exchange, who publishes there). Ours go out through each service's outbox to
# `<service>.events`; partner reports come in through the inbound exchange.
EXCHANGES = {
    "report": ("intake.events", "intake"),
    "case": ("dispatch.events", "dispatch"),
    "external": ("integration365.events", "integration365"),
    "partner_report": (INBOUND_EXCHANGE, "partner"),
}

DESCRIPTION = f"""\
Events of 民情E点通 (MinQing E-Point) on RabbitMQ (AMQP 0-9-1), for district platforms
that read what happens to reports and cases and that hand reports to us.

**Envelope.** Every message is a CloudEvents 1.0 event in structured mode: the AMQP
content type is `application/cloudevents+json` and the body is the JSON envelope
(`specversion`, `id`, `source`, `type`, `subject`, `time`, `datacontenttype`, `data`,
optionally `correlationid`). Messages are persistent. Read them with any CloudEvents SDK
(Python: `cloudevents.core.bindings.rabbitmq.from_rabbitmq`). `data` follows the JSON
Schema named by each message (`contracts/events/<type>.json`, draft 2020-12).

**Exchanges.** One durable topic exchange per publishing service (`<service>.events`);
the routing key is the event type, so bind with patterns like `cn.minqing.case.#`.
Delivery is at least once: deduplicate by the event `id`. No event here names who
reported something (no reporter id, phone or caller id; a reporter's rating has actor
role `reporter` and id null, and no comment). The services' own `<service>.internal`
exchanges are not part of this contract and cannot be read by a partner's user.

**Partners.** Each partner platform gets its own RabbitMQ user `{PARTNER_USER_PREFIX}<name>`
(`make partner NAME=<name>`). It may declare, bind and consume only queues named
`partner.<name>.<anything>`, bind them to {", ".join(f"`{e}`" for e in PUBLIC_EXCHANGES)},
and publish only to `{INBOUND_EXCHANGE}`. It must not declare our exchanges (a passive
declare is fine): the broker refuses anything else (`ACCESS_REFUSED`, channel closed).

**Inbound reports.** Publish `cn.minqing.partner_report.submitted.v1` to
`{INBOUND_EXCHANGE}` with that routing key, the AMQP `user_id` property set to your user
name (the broker checks it; messages without it are refused) and `mandatory` set. The
report made of it has id `uuid5({PARTNER_REPORTS_NAMESPACE}, "<user>:<event id>")`; a
repeated event id makes no second report. Its `cn.minqing.report.submitted.v1` (channel
`partner`) and the case events follow on the exchanges above. A message that cannot be
accepted is sent back to `partner.<name>.rejected`, unchanged, with the reason in its
headers (`x-minqing-reason`, `x-minqing-detail`, `x-minqing-detail-zh`).
"""


def _envelope() -> dict:
    return {
        "type": "object",
        "description": "CloudEvents 1.0, structured mode (the whole envelope is the body).",
        # What intake requires of a partner's event; ours carry more (see build()).
        "required": ["specversion", "id", "source", "type", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1,
                   "description": "unique per event (a UUID for ours); deduplicate by it"},
            "source": {"type": "string", "description": "/minqing/<service> for ours"},
            "type": {"type": "string", "pattern": r"^cn\.minqing\.[a-z_]+\.[a-z_]+\.v[0-9]+$"},
            "subject": {"type": "string", "description": "the entity id (report or case)"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "correlationid": {"type": "string",
                              "description": "the request that caused it, for tracing"},
            "data": {"type": "object"},
        },
    }


def _rejection_headers() -> dict:
    return {
        "type": "object",
        "required": ["x-minqing-reason", "x-minqing-detail", "x-minqing-consumer"],
        "properties": {
            "x-minqing-reason": {
                "type": "string",
                "description": "a stable code: not-json, bad-envelope, wrong-content-type, "
                               "too-large, unknown-type, unexpected-type, schema-violation, "
                               "unknown-partner, unknown-category, out-of-area, invalid"},
            "x-minqing-detail": {"type": "string", "description": "what is wrong (English)"},
            "x-minqing-detail-zh": {"type": "string", "description": "the same in Chinese"},
            "x-minqing-consumer": {"type": "string"},
            "x-minqing-original-exchange": {"type": "string"},
            "x-minqing-original-routing-key": {"type": "string"},
            "x-minqing-original-content-type": {"type": "string"},
        },
    }


def _ident(type_: str) -> str:
    """cn.minqing.case.escalated_external.v1 -> caseEscalatedExternalV1"""
    words = type_.removeprefix("cn.minqing.").replace(".", "_").split("_")
    return words[0] + "".join(w.capitalize() for w in words[1:])


def _exchange(name: str, vhost: str = "/") -> dict:
    return {"name": name, "type": "topic", "durable": True, "autoDelete": False,
            "vhost": vhost}


def event_types() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in EVENTS.glob("cn.minqing.*.json"))


def build() -> dict:
    channels: dict = {}
    operations: dict = {}
    messages: dict = {}
    for type_ in event_types():
        entity = type_.split(".")[2]
        if entity not in EXCHANGES:
            raise SystemExit(f"{type_}: no exchange known for entity {entity!r}; add it to "
                             f"EXCHANGES in tools/contracts.py")
        exchange, publisher = EXCHANGES[entity]
        schema = json.loads((EVENTS / f"{type_}.json").read_text(encoding="utf-8"))
        ident = _ident(type_)
        inbound = exchange == INBOUND_EXCHANGE
        messages[ident] = {
            "name": type_,
            "title": schema.get("title", type_),
            "summary": schema.get("description", ""),
            "contentType": "application/cloudevents+json",
            "payload": {"allOf": [
                {"$ref": "#/components/schemas/cloudEvent"},
                {"type": "object",
                 **({} if inbound else {"required": ["subject", "time", "datacontenttype"]}),
                 "properties": {
                    "type": {"const": type_},
                    **({} if inbound else {"source": {"const": f"/minqing/{publisher}"}}),
                    "data": {"$ref": f"./events/{type_}.json"},
                }},
            ]},
            "bindings": {"amqp": {"messageType": type_, "bindingVersion": AMQP_BINDING}},
        }
        channels[ident] = {
            "address": type_,
            "title": f"{exchange} / {type_}",
            "description": f"Exchange `{exchange}` (topic), routing key `{type_}`.",
            "messages": {ident: {"$ref": f"#/components/messages/{ident}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": _exchange(exchange),
                                  "bindingVersion": AMQP_BINDING}},
        }
        operation = {
            "action": "receive" if inbound else "send",
            "channel": {"$ref": f"#/channels/{ident}"},
            "summary": ("A partner hands us a report (intake consumes it)." if inbound
                        else f"{publisher} publishes {type_}."),
            "messages": [{"$ref": f"#/channels/{ident}/messages/{ident}"}],
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING,
                                  **({"mandatory": True, "userId": f"{PARTNER_USER_PREFIX}<name>"}
                                     if inbound else {})}},
        }
        if inbound:
            operation["security"] = [{"$ref": "#/components/securitySchemes/partnerUser"}]
        operations[("receive" if inbound else "send") + ident[0].upper() + ident[1:]] = operation

    channels["partnerRejections"] = {
        "address": "partner.{name}.rejected",
        "title": f"{REJECTIONS_EXCHANGE} -> partner.<name>.rejected",
        "description": "Your refused messages, each as you sent it, with the reason in its "
                       "headers. Declared and bound (exchange "
                       f"`{REJECTIONS_EXCHANGE}`, routing key `<name>`) when you are "
                       "provisioned; only you can read it.",
        "parameters": {"name": {"description": "the partner's name, e.g. ping_an_365"}},
        "messages": {"rejectedMessage": {"$ref": "#/components/messages/rejectedMessage"}},
        "bindings": {"amqp": {"is": "queue", "queue": {
            "name": "partner.{name}.rejected", "durable": True, "exclusive": False,
            "autoDelete": False, "vhost": "/"}, "bindingVersion": AMQP_BINDING}},
    }
    messages["rejectedMessage"] = {
        "name": "rejected",
        "title": "A message we could not accept (退回)",
        "contentType": "application/cloudevents+json",
        "headers": {"$ref": "#/components/schemas/rejectionHeaders"},
        "payload": {"description": "the body exactly as it was published"},
    }
    operations["sendPartnerRejection"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/partnerRejections"},
        "summary": "intake sends back what it cannot accept, saying why.",
        "messages": [{"$ref": "#/channels/partnerRejections/messages/rejectedMessage"}],
    }
    channels["partnerQueues"] = {
        "address": "partner.{name}.{queue}",
        "title": "Your own queues",
        "description": "Declare durable (quorum or classic) queues with these names and "
                       "bind them to our event exchanges with the routing keys you want, "
                       "e.g. `cn.minqing.case.#` on `dispatch.events`. Nothing else can be "
                       "declared or read by a partner.",
        "parameters": {"name": {"description": "the partner's name"},
                       "queue": {"description": "any name, e.g. events"}},
        "bindings": {"amqp": {"is": "queue", "queue": {
            "name": "partner.{name}.{queue}", "durable": True, "exclusive": False,
            "autoDelete": False, "vhost": "/"}, "bindingVersion": AMQP_BINDING}},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "民情E点通 (MinQing E-Point) events",
            "version": "1.0.0",
            "description": DESCRIPTION,
            "license": {"name": "MIT"},
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {"rabbitmq": {
            "host": "rabbitmq.example.org:5672",
            "protocol": "amqp",
            "protocolVersion": "0.9.1",
            "description": "The platform's broker; the vhost and your credentials come with "
                           "your partner user.",
            "security": [{"$ref": "#/components/securitySchemes/partnerUser"}],
        }},
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"cloudEvent": _envelope(), "rejectionHeaders": _rejection_headers()},
            "messages": messages,
            "securitySchemes": {"partnerUser": {
                "type": "userPassword",
                "description": f"Your RabbitMQ user `{PARTNER_USER_PREFIX}<name>` and its "
                               "password (`make partner NAME=<name>`).",
            }},
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line text as YAML literal blocks, so the prose reads as written."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def render() -> str:
    header = ("# GENERATED by `python -m tools.contracts` from contracts/events/*.json: edit "
              "those, or tools/contracts.py, then regenerate.\n")
    return header + yaml.dump(build(), Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                              width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.contracts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text(encoding="utf-8") != text:
            print(f"{DOCUMENT} is out of date: run python -m tools.contracts", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT} ({len(event_types())} event types)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
