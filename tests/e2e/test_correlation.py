"""One correlation id follows a report from the gateway through every service's logs."""
import json
import uuid

import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration


def log_entries(stack, service: str) -> list[dict]:
    path = stack.st.run_dir / "logs" / f"{service}.log"
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def test_a_reports_correlation_id_is_in_the_logs_of_gateway_intake_and_dispatch(stack):
    # Given a phone that tags its request with an id
    resident = stack.client("resident-zhang")
    request_id = f"phone-{uuid.uuid4()}"

    # When it submits a report
    r = resident.report(description="小区垃圾桶满溢无人清运", category="hazard-rubbish",
                        headers={"X-Request-Id": request_id})
    assert r.status_code == 201, r.text
    assert r.headers["X-Request-Id"] == request_id
    report_id = r.json()["id"]
    wait_for(lambda: stack.case_for(report_id), what="the case")

    # Then the gateway's access line, intake's acceptance and dispatch's case opening
    # all carry it, as JSON log lines
    def tagged(service):
        return [e for e in log_entries(stack, service) if e.get("correlation_id") == request_id]
    wait_for(lambda: all(tagged(s) for s in ("gateway", "intake", "dispatch")),
             what="the correlation id in every service's log")
    assert any(e.get("route") == "/v1/reports" and e["status"] == 201
               for e in tagged("gateway"))
    assert any(e.get("report_id") == report_id for e in tagged("intake"))
    assert any(e.get("report_id") == report_id and e.get("case_id")
               for e in tagged("dispatch"))
    # And the events it caused carry it too, for consumers outside the platform
    bodies = [bytes(b) for b in (
        stack.scalar("SELECT body FROM intake.outbox WHERE subject = :r", r=report_id),
        stack.scalar("SELECT body FROM dispatch.outbox WHERE subject = "
                     "(SELECT case_id::text FROM dispatch.case_reports WHERE report_id = :r)",
                     r=report_id))]
    assert all(json.loads(b)["correlationid"] == request_id for b in bodies)


def test_a_request_without_an_id_gets_one_back(stack):
    r = stack.client().get("/v1/openapi.json")
    assert r.status_code == 200
    assert len(r.headers["X-Request-Id"]) >= 32
