"""The Open311 adapter against the simulator's WSGI app, served in-process (no broker,
no database): what each partner behaviour becomes on our side."""
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from werkzeug.serving import make_server

from services.integration365.adapters import (
    Open311Adapter,
    PartnerRefused,
    PartnerUnavailable,
)
from services.integration365.simulator import Platform, Simulator

ORDER = {"case_id": "6f1c1c4e-2b7a-4a53-9a4e-3f1d2d0b7c11", "category": "hazard-facility",
         "description": "路灯不亮", "lat": 30.24, "lon": 120.18, "address": "望江路 1 号",
         "attachments": ["reports/a.jpg"], "resolve_due_at": "2026-12-01T00:00:00+00:00"}


ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def platform():
    platform = Platform(None)
    platform.config.update(auto_progress=False)
    server = make_server("127.0.0.1", 0, Simulator(platform, ADMIN_TOKEN), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    platform.url = f"http://127.0.0.1:{server.server_port}/open311/v2"
    yield platform
    server.shutdown()


@pytest.fixture
def adapter(platform):
    return Open311Adapter("ping_an_365", platform.url, timeout_s=0.5)


def test_create_opens_a_work_order_carrying_our_reference_and_the_case(adapter, platform):
    remote_id = adapter.create("ref-1", ORDER)
    saved = platform.requests[remote_id]
    assert saved["minqing_ref"] == "ref-1"
    assert saved["attributes"]["minqing_case_id"] == ORDER["case_id"]
    assert saved["attributes"]["minqing_attachments"] == "reports/a.jpg"
    assert saved["address"] == "望江路 1 号"


def test_find_returns_the_work_order_made_with_a_reference_and_none_otherwise(adapter):
    remote_id = adapter.create("ref-2", ORDER)
    assert adapter.find("ref-2") == remote_id
    assert adapter.find("ref-unknown") is None


def test_an_answer_with_a_token_is_resolved_to_the_work_order(adapter, platform):
    platform.config["answer_with_token"] = True
    remote_id = adapter.create("ref-3", ORDER)
    assert remote_id in platform.requests


def test_fetch_shows_the_partners_view_and_leaves_out_what_it_lacks(adapter, platform):
    remote_id = adapter.create("ref-4", ORDER)
    platform.advance(remote_id, "FIXED", "已修复")
    found = adapter.fetch([remote_id, "PA365-999999"])
    assert list(found) == [remote_id]
    assert (found[remote_id].status, found[remote_id].notes) == ("closed", "已修复")


def test_updates_since_lists_the_partners_updates_oldest_first(adapter, platform):
    before = datetime.now(UTC) - timedelta(seconds=1)
    remote_id = adapter.create("ref-5", ORDER)
    platform.advance(remote_id)
    platform.advance(remote_id)
    updates = adapter.updates_since(before)
    assert [u.status for u in updates if u.remote_id == remote_id] == [
        "ACTION_SCHEDULED", "IN_PROGRESS"]
    assert adapter.updates_since(datetime.now(UTC) + timedelta(seconds=5)) == []


@pytest.mark.parametrize("knobs,reason", [
    ({"fail_rate": 1.0, "error_status": 503}, "http-503"),
    ({"fail_rate": 1.0, "error_status": 429}, "http-429"),
    ({"fail_rate": 1.0, "error_status": 403}, "http-403"),
    ({"down": True}, "connection"),
    ({"delay_s": 1.0}, "timeout"),
])
def test_a_failing_partner_is_unavailable_with_a_reason(adapter, platform, knobs, reason):
    platform.config.update(knobs)
    with pytest.raises(PartnerUnavailable) as failed:
        adapter.create("ref-6", ORDER)
    assert failed.value.reason == reason


def test_a_lost_answer_is_unavailable_yet_find_sees_what_it_made(adapter, platform):
    platform.config["lose_responses"] = 1
    with pytest.raises(PartnerUnavailable):
        adapter.create("ref-7", ORDER)
    assert adapter.find("ref-7") in platform.requests


def test_a_partner_that_reads_and_refuses_the_request_is_a_refusal(adapter):
    with pytest.raises(PartnerRefused, match="missing description"):
        adapter.create("ref-8", dict(ORDER, description=""))


def test_numeric_ids_are_read_as_strings_and_a_malformed_update_is_skipped(adapter,
                                                                          monkeypatch):
    answer = [{"update_id": 7, "service_request_id": 42, "status": "FIXED",
               "updated_datetime": "2026-11-30T08:00:00+08:00"},
              {"update_id": 8, "service_request_id": 42, "status": "FIXED",
               "updated_datetime": "yesterday"}]
    monkeypatch.setattr(adapter, "_call", lambda *a, **k: answer)
    (update,) = adapter.updates_since(datetime.now(UTC))
    assert (update.update_id, update.remote_id) == ("7", "42")
    assert update.updated_at == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def test_an_answer_to_a_post_without_an_id_or_token_is_not_taken_as_success(adapter,
                                                                            monkeypatch):
    monkeypatch.setattr(adapter, "_call", lambda *a, **k: [{"service_notice": "ok"}])
    with pytest.raises(PartnerUnavailable) as failed:
        adapter.create("ref-9", ORDER)
    assert failed.value.reason == "bad-response"


def test_the_simulator_refuses_an_unknown_or_out_of_range_knob(platform):
    admin = platform.url.replace("/open311/v2", "/_sim/config")
    assert requests.post(admin, json={"fail_rate": 2}, headers=ADMIN,
                         timeout=5).status_code == 400
    assert requests.post(admin, json={"no_such_knob": 1}, headers=ADMIN,
                         timeout=5).status_code == 400
    assert requests.post(admin, json={"delay_s": 0.5}, headers=ADMIN,
                         timeout=5).json()["delay_s"] == 0.5


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"},
                                     {"Authorization": ADMIN_TOKEN}], ids=[
    "no token", "wrong token", "token without Bearer"])
def test_the_simulators_knobs_refuse_a_caller_without_the_admin_token(platform, headers):
    # Given a simulator whose admin API needs its token
    admin = platform.url.replace("/open311/v2", "/_sim")
    # When a caller without it tries to take the partner down, or read or reset it
    down = requests.post(f"{admin}/config", json={"down": True}, headers=headers, timeout=5)
    read = requests.get(f"{admin}/config", headers=headers, timeout=5)
    orders = requests.get(f"{admin}/requests", headers=headers, timeout=5)
    reset = requests.post(f"{admin}/reset", headers=headers, timeout=5)
    # Then each is refused, and nothing changed
    assert [r.status_code for r in (down, read, orders, reset)] == [401] * 4
    assert down.headers["WWW-Authenticate"].startswith("Bearer")
    assert platform.config["down"] is False


def test_a_simulator_started_without_an_admin_token_refuses_every_admin_call():
    # Given a simulator started without PINGAN365_SIM_TOKEN
    platform = Platform(None)
    server = make_server("127.0.0.1", 0, Simulator(platform), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # When anyone, with any token, turns a knob
        r = requests.post(f"http://127.0.0.1:{server.server_port}/_sim/config",
                          json={"down": True}, headers={"Authorization": "Bearer "},
                          timeout=5)
        # Then it is refused, and the partner is unchanged
        assert r.status_code == 403
        assert platform.config["down"] is False
    finally:
        server.shutdown()
