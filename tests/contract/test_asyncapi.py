"""contracts/asyncapi.yaml: complete, current, resolvable, and valid AsyncAPI 3.0.

No server needed. The parser is npm's @asyncapi/parser, installed (pinned by
tools/asyncapi/package-lock.json) by `make test`; it works offline once installed.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests import asyncapi_contract as contract
from tools import contracts, partners

NODE_TOOL = contracts.ROOT / "tools" / "asyncapi"


def all_refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
            r for v in node.values() for r in all_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in all_refs(v)]
    return []


def test_every_event_schema_is_in_the_contract():
    # Given the event schemas in contracts/events/
    schemas = {p.name for p in contracts.EVENTS.glob("*.json")}
    # When we collect the files the AsyncAPI document points to
    referenced = {ref.split("/")[-1] for ref in all_refs(contract.document())
                  if ref.startswith("./events/")}
    # Then every schema is there (if not: python -m tools.contracts), and no other file
    assert sorted(schemas - referenced) == [], "not in contracts/asyncapi.yaml; run " \
                                                "`python -m tools.contracts`"
    assert sorted(referenced - schemas) == []


def test_every_reference_resolves():
    # Given every $ref of the document, internal (#/...) and to event schema files
    refs = all_refs(contract.document())
    assert refs
    # When each is followed, then it leads somewhere
    unresolved = []
    for ref in refs:
        try:
            contract.resolve(ref)
        except (KeyError, FileNotFoundError, json.JSONDecodeError) as exc:
            unresolved.append(f"{ref}: {exc!r}")
    assert unresolved == []


def test_the_document_is_what_the_event_schemas_make():
    # Given the generator and the committed document, then they agree
    assert contracts.DOCUMENT.read_text(encoding="utf-8") == contracts.render(), \
        "contracts/asyncapi.yaml is out of date: run `python -m tools.contracts`"


def test_each_event_type_has_one_channel_on_its_exchange_with_its_type_as_routing_key():
    routes = contract.routes()
    # Then every channel's routing key is the type of the one message it carries
    assert all(key == message["name"] for (_, key), message in routes.items())
    # And each type is on exactly one exchange
    types = [key for _, key in routes]
    assert len(types) == len(set(types)) == len(contracts.event_types())


def test_partners_may_bind_to_exactly_the_exchanges_the_contract_publishes_on():
    # Given the exchanges the contract says we publish to
    ours = {exchange for (exchange, _) in contract.routes()
            if exchange != contracts.INBOUND_EXCHANGE}
    # Then a partner's read permission covers those and no other
    read = re.compile(partners.permissions("somepartner")["read"])
    assert ours == set(partners.PUBLIC_EXCHANGES)
    assert all(read.match(e) for e in ours)
    assert not read.match(contracts.INBOUND_EXCHANGE)
    assert not read.match(contracts.REJECTIONS_EXCHANGE)


def test_the_asyncapi_parser_accepts_the_document():
    # Given the official parser, installed by `make test` (npm ci --prefix tools/asyncapi)
    node = shutil.which("node")
    assert node, "Node.js is needed for the AsyncAPI parser"
    if not (NODE_TOOL / "node_modules" / "@asyncapi" / "parser").exists():
        pytest.fail("the AsyncAPI parser is not installed: make test installs it, or run "
                    "`npm ci --prefix tools/asyncapi`")
    # When it parses contracts/asyncapi.yaml, following the $refs to the event schemas
    run = subprocess.run([node, str(NODE_TOOL / "validate.mjs"), str(contracts.DOCUMENT)],
                         capture_output=True, text=True, timeout=120)
    result = json.loads(run.stdout or "{}")
    # Then it is a valid AsyncAPI 3.0 document with a message for every event type
    assert run.returncode == 0 and result["valid"], (result.get("errors"), run.stderr)
    assert result["warnings"] == []
    assert result["version"] == "3.0.0"
    assert set(contracts.event_types()) <= set(result["messages"])


def test_a_message_that_breaks_its_schema_is_told_apart():
    # Given an event whose data lacks a required field
    body = json.dumps({"specversion": "1.0", "id": "x", "source": "/minqing/intake",
                       "type": "cn.minqing.report.submitted.v1",
                       "time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
                       "data": {"report_id": "not-a-uuid"}}).encode()
    # When it is checked against the contract, then each fault is named
    problems = contract.mismatches("intake.events", "cn.minqing.report.submitted.v1",
                                   "application/cloudevents+json", body)
    assert any("report_id" in p for p in problems)
    assert any("channel" in p for p in problems)
    # And a type on an exchange the contract does not list is a mismatch too
    assert contract.mismatches("dispatch.events", "cn.minqing.report.submitted.v1",
                               "application/cloudevents+json", body) == [
        "dispatch.events / cn.minqing.report.submitted.v1: the contract has no channel for it"]
