"""Issue #19: deleting an account reaches every service that keeps something under it.
identity emits `account.deleted` on its internal exchange in the commit that deletes the
account; intake and dispatch put the person's reports and cases under the event's
pseudonym, once, over the real broker. The reports and cases stay."""
from __future__ import annotations

import pytest
import requests
from kombu import Connection, Exchange

from minqing_kernel import events as ev
from tests.e2e.test_accounts import bearer, new_phone, signed_up
from tests.fixtures import wait_for

pytestmark = pytest.mark.integration

ACCOUNT_DELETED = ev.event_type("account.deleted")
IN_SHIBANQIAO = {"lat": 30.24115, "lon": 120.18708}


def file_report(stack, token: str) -> str:
    r = requests.post(f"{stack.gateway}/v1/reports", headers=bearer(token), timeout=30,
                      json={"category": "dispute-noise", "description": "楼下商铺夜间噪音",
                            "location": IN_SHIBANQIAO})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def named(stack, user_id: str) -> dict:
    """Where intake and dispatch still hold the account id."""
    return {
        "reports": stack.scalar("SELECT count(*) FROM intake.reports WHERE reporter_id = :u "
                                "OR submitted_by = :u", u=user_id),
        "uploads": stack.scalar("SELECT count(*) FROM intake.uploads WHERE owner_id = :u",
                                u=user_id),
        "cases": stack.scalar("SELECT count(*) FROM dispatch.cases WHERE :u = ANY(reporter_ids)",
                              u=user_id),
    }


def test_a_deleted_residents_reports_and_cases_stay_under_a_pseudonym(stack):
    # Given a resident with a report, its upload and its case
    account = signed_up(stack, new_phone())
    me, token = account["user"]["id"], account["access_token"]
    ticket = requests.post(f"{stack.gateway}/v1/uploads", headers=bearer(token), timeout=30,
                           json={"content_type": "image/jpeg", "size": 2048})
    assert ticket.status_code == 201, ticket.text
    report = file_report(stack, token)
    case = wait_for(lambda: stack.case_for(report), what="the case")
    assert named(stack, me) == {"reports": 1, "uploads": 1, "cases": 1}
    # When the resident deletes the account
    r = requests.delete(f"{stack.gateway}/v1/me", headers=bearer(token), timeout=30)
    assert r.status_code == 200, r.text
    # then intake and dispatch, told by identity's event, keep nothing under the id
    wait_for(lambda: named(stack, me) == {"reports": 0, "uploads": 0, "cases": 0},
             what="the account id gone from intake and dispatch")
    # and the report and its case stay, under one pseudonym in both
    pseudonym = stack.scalar("SELECT reporter_id FROM intake.reports WHERE id = :r", r=report)
    assert pseudonym.startswith("deleted-") and pseudonym != me
    assert stack.scalar("SELECT reporter_ids[1] FROM dispatch.cases WHERE id = :c",
                        c=case) == pseudonym
    # and identity's audit of the account no longer carries the name it signed up with
    assert stack.scalar("SELECT count(*) FROM identity.account_changes WHERE user_id = :u",
                        u=me) == 2  # signed-up, account-deleted
    assert stack.scalar("SELECT count(*) FROM identity.account_changes WHERE user_id = :u "
                        "AND changes::text LIKE '%新居民%'", u=me) == 0
    # and identity keeps no link from the account to it
    assert stack.scalar("SELECT count(*) FROM identity.users WHERE id = :p OR username = :p "
                        "OR display_name = :p", p=pseudonym) == 0
    assert stack.scalar("SELECT count(*) FROM identity.account_changes WHERE "
                        "changes::text LIKE :p", p=f"%{pseudonym}%") == 0


def test_account_deleted_is_internal_and_handled_once(stack):
    # The event goes to identity.internal, which no partner's broker user may read
    assert ev.exchange_for("identity", ACCOUNT_DELETED) == "identity.internal"
    account = signed_up(stack, new_phone())
    me, token = account["user"]["id"], account["access_token"]
    file_report(stack, token)
    assert requests.delete(f"{stack.gateway}/v1/me", headers=bearer(token),
                           timeout=30).status_code == 200
    wait_for(lambda: named(stack, me)["reports"] == 0, what="intake's re-keying")
    body = stack.scalar("SELECT convert_from(body, 'UTF8') FROM identity.outbox "
                        "WHERE type = :t AND subject = :u", t=ACCOUNT_DELETED, u=me)
    # Given a report filed under the id after the event was handled (as if a late one)
    with stack.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO intake.reports (id, reporter_id, submitted_by, channel, category, "
            "description, lat, lon, attachments, submitted_at) SELECT gen_random_uuid(), "
            "%(u)s, %(u)s, channel, category, description, lat, lon, attachments, "
            "submitted_at FROM intake.reports WHERE reporter_id LIKE 'deleted-%%' LIMIT 1",
            {"u": me})
    try:
        # When the broker delivers the same event again
        handled = {"consumer": "intake.forget_reporter", "outcome": "ok"}
        before = stack.metric("intake", "minqing_events_handled_total", **handled)
        with Connection(stack.st.env["AMQP_URI"]) as conn:
            conn.Producer().publish(body.encode(), exchange=Exchange("identity.internal", "topic"),
                                    routing_key=ACCOUNT_DELETED, content_type=ev.CONTENT_TYPE,
                                    content_encoding="binary", delivery_mode=2)
        wait_for(lambda: stack.metric("intake", "minqing_events_handled_total", **handled)
                 > before, what="the repeat handled")
        # then it has no second effect: intake recorded the event id the first time
        assert named(stack, me)["reports"] == 1
    finally:
        # The planted report has no case: left behind, it would stall every later test
        # that waits for each report to have its case (test_bad_input's settled_state).
        with stack.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM intake.reports WHERE reporter_id = %(u)s",
                                 {"u": me})
