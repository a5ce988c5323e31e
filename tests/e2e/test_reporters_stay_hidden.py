"""Reporters stay hidden (issue 10): one resident's reports followed down every road a
report can take, with everything that reaches people and platforms outside the command
center recorded and searched for anything that names her or can be reversed to her.

Who is watched: the handler and the leader of the unit the case went to, the volunteer on
the wish board, 平安365 (the simulator's record of each work order), an Open311 client (JSON
and XML), a partner platform's own queue on our public exchanges, and the timeline each of
them reads. The operator is the command center itself and may know who called back; it is
not watched here (the access matrix covers what each role reads).

What counts as a leak: the reporter's username (her id), her phone, the name she signed up
with, a phone caller's number and the caller id intake derived from it, the plain SHA-256
digests of any of these (what a careless pseudonym would be, and reversible by guessing),
and the words she wrote with her rating.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest
import requests

from tests.e2e.test_open311 import V2
from tests.e2e.test_partner_platform import Partner
from tests.e2e.test_pingan365_bridge import PARTNER, Simulator
from tests.fixtures import IN_SHIBANQIAO, JPEG, wait_for

pytestmark = pytest.mark.integration

RESIDENT, RESIDENT_PHONE, RESIDENT_NAME = "resident-zhang", "13800000001", "张阿姨"
PUBLIC_EXCHANGES = ["intake.events", "dispatch.events", "integration365.events"]


def digests(secret: str) -> list[str]:
    """Plain (unkeyed) SHA-256 of a value, whole and cut as ids often are: what an
    outsider who guesses the value can recompute."""
    out = []
    for text in (secret, f"minqing-caller:{secret}"):
        h = hashlib.sha256(text.encode()).hexdigest()
        out += [h, h[:16], h[:12]]
    return out


class Watched:
    """Everything the outside parties were given, as text, with where it came from."""

    def __init__(self):
        self.seen: list[tuple[str, str]] = []

    def record(self, where: str, text: str) -> None:
        self.seen.append((where, text))

    def response(self, who: str, r: requests.Response) -> requests.Response:
        assert r.status_code < 500, (who, r.url, r.text)
        self.record(f"{who} {r.request.method} {r.url} -> {r.status_code}", r.text)
        return r

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        found = []
        for where, text in self.seen:
            for what, secret in secrets.items():
                if secret and secret in text:
                    found.append(f"{what} ({secret}) in {where}")
        return found


def act(client, case_id: str, **action) -> dict:
    r = client.post(f"/v1/cases/{case_id}/actions", json=action)
    assert r.status_code == 200, r.text
    return r.json()


def handler_of(stack, unit_id: str) -> str:
    username = stack.scalar("SELECT username FROM identity.users WHERE unit_id = :u "
                            "AND 'handler' = ANY(roles) ORDER BY username LIMIT 1", u=unit_id)
    assert username, f"no handler for {unit_id}"
    return username


def leader_of(stack, unit_id: str) -> str | None:
    return stack.scalar("SELECT username FROM identity.users WHERE unit_id = :u "
                        "AND 'leader' = ANY(roles) ORDER BY username LIMIT 1", u=unit_id)


@pytest.fixture
def partner(stack, partner_user):
    user, uri = partner_user(f"watcher_{uuid.uuid4().hex[:6]}")
    p = Partner(user, uri)
    queue = p.follow("everything", [(x, "#") for x in PUBLIC_EXCHANGES])
    yield p, queue
    p.close()


def drain(partner: Partner, queue: str, watched: Watched) -> int:
    channel = partner.conn.channel()
    count = 0
    try:
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            body = message.body.decode() if isinstance(message.body, bytes) else message.body
            watched.record(f"partner queue ({message.delivery_info.get('routing_key')})",
                           body + json.dumps(message.headers or {}, ensure_ascii=False))
            count += 1
    finally:
        channel.close()
    return count


def test_no_handler_partner_or_public_event_learns_who_reported(stack, partner):
    partner_conn, queue = partner
    watched = Watched()
    resident = stack.client(RESIDENT)
    operator = stack.client("operator-chen")
    comment = f"楼下那家人又在半夜敲打，我是三楼的住户-{uuid.uuid4().hex[:8]}"
    caller_phone = f"139{uuid.uuid4().int % 10**8:08d}"
    cases: dict[str, str] = {}

    def file(road: str, **fields) -> str:
        r = resident.report(**fields)
        assert r.status_code == 201, r.text
        report_id = r.json()["id"]
        cases[road] = wait_for(lambda: stack.case_for(report_id), what=f"the {road} case")
        return report_id

    # Road 1: assigned to a unit, accepted, resolved with a photo, rated with a comment.
    photo = resident.upload(JPEG)
    file("handled", category="dispute-noise", description="楼上深夜装修，噪音扰民",
         location=IN_SHIBANQIAO, attachments=[photo])
    case = act(operator, cases["handled"], action="assign")
    handler = stack.client(handler_of(stack, case["unit_id"]))
    act(handler, cases["handled"], action="accept")
    act(handler, cases["handled"], action="resolve", result="已上门劝导，约定施工时间")
    r = resident.post(f"/v1/cases/{cases['handled']}/feedback",
                      json={"rating": 2, "comment": comment})
    assert r.status_code == 200, r.text

    # Road 2: a micro-wish on the volunteers' board, claimed and fulfilled.
    file("wish", category="help-wish", description="独居老人家中灯泡坏了，需要帮忙更换",
         location=IN_SHIBANQIAO, attachments=[resident.upload(JPEG)])
    act(operator, cases["wish"], action="publish_wish")
    volunteer = stack.client("patroller-zhao")
    board = watched.response("volunteer", volunteer.get("/v1/wishes", params={"limit": 100}))
    assert cases["wish"] in board.text
    watched.response("volunteer", volunteer.post(f"/v1/wishes/{cases['wish']}/claim"))
    watched.response("volunteer", volunteer.post(f"/v1/wishes/{cases['wish']}/fulfil",
                                                 json={"note": "已上门更换"}))

    # Road 3: handed to 平安365, with a photo.
    file("pingan365", category="hazard-facility", description="小区东门外人行道塌陷",
         location=IN_SHIBANQIAO, attachments=[resident.upload(JPEG)])
    act(operator, cases["pingan365"], action="escalate_external", partner=PARTNER,
        note="超出街道处置能力")
    sim = Simulator(stack)
    orders = wait_for(lambda: sim.work_orders(cases["pingan365"]), timeout=60,
                      what="the 平安365 work order")
    watched.record("平安365 work order", json.dumps(orders, ensure_ascii=False))

    # Road 4: a phone caller, whose report the operator files for them.
    r = operator.report(channel="phone", caller_phone=caller_phone, category="dispute-noise",
                        description="来电反映：小区广场舞音响太响", location=IN_SHIBANQIAO)
    assert r.status_code == 201, r.text
    phone_report = r.json()["id"]
    cases["phone"] = wait_for(lambda: stack.case_for(phone_report), what="the phone case")
    phone_case = act(operator, cases["phone"], action="assign")
    caller_id = stack.scalar("SELECT reporter_id FROM intake.reports WHERE id = :r",
                             r=phone_report)
    assert caller_id and caller_phone not in caller_id

    # What the unit's people read of every case: the handler and the leader.
    for road, case_id in cases.items():
        if road == "wish":
            continue
        unit = (phone_case if road == "phone" else case)["unit_id"] if road != "pingan365" \
            else None
        readers = [handler] if unit is None else [stack.client(handler_of(stack, unit))]
        if unit and (leader := leader_of(stack, unit)):
            readers.append(stack.client(leader))
        for reader in readers:
            who = reader.user["id"]
            watched.response(who, reader.get(f"/v1/cases/{case_id}"))
            watched.response(who, reader.get(f"/v1/cases/{case_id}/timeline"))
            watched.response(who, reader.get("/v1/cases", params={"limit": 100}))
            watched.response(who, reader.get("/v1/inbox", params={"limit": 100}))
    watched.response("volunteer", volunteer.get(f"/v1/cases/{cases['wish']}/timeline"))

    # What an Open311 client reads, in JSON and XML.
    ids = ",".join(stack.scalar("SELECT string_agg(report_id::text, ',') FROM "
                                "dispatch.case_reports WHERE case_id = :c", c=c)
                   for c in cases.values())
    for fmt in ("json", "xml"):
        watched.response("open311", requests.get(
            f"{stack.gateway}{V2}/requests.{fmt}", params={"service_request_id": ids},
            timeout=10))
        watched.response("open311", requests.get(
            f"{stack.gateway}{V2}/servicerequestupdates.{fmt}", timeout=10))

    # What a partner platform read on our public exchanges, once the last events are out.
    wait_for(lambda: stack.scalar(
        "SELECT status FROM dispatch.cases WHERE id = :c", c=cases["pingan365"])
        in ("resolved", "closed"), timeout=60, what="平安365 resolving its case")
    received = 0
    for _ in range(30):
        received += drain(partner_conn, queue, watched)
        if received and not stack.scalar(
                "SELECT count(*) FROM dispatch.outbox WHERE published_at IS NULL"):
            break
        time.sleep(1)
    assert received >= 15, f"only {received} public events reached the partner"

    secrets = {"her username": RESIDENT, "her phone": RESIDENT_PHONE,
               "her name": RESIDENT_NAME, "the caller's phone": caller_phone,
               "the caller id": caller_id, "her rating comment": comment}
    for what, value in [("her username", RESIDENT), ("her phone", RESIDENT_PHONE),
                        ("the caller's phone", caller_phone)]:
        for i, digest in enumerate(digests(value)):
            secrets[f"a plain digest of {what} #{i}"] = digest
    leaks = watched.leaks(secrets)
    assert not leaks, "\n".join(leaks[:40])
    # and the test looked at something: every road was seen by someone outside
    seen = "\n".join(text for _, text in watched.seen)
    for case_id in cases.values():
        assert case_id in seen, f"nobody outside saw case {case_id}"
