"""Nothing lost, nothing doubled: a burst of reports while one thing fails at a time.

Each test sends a few hundred reports through the gateway, breaks one part of the
system part-way, repairs it, and checks (tests/faults/harness.py) that every report the
gateway acknowledged — indeed every report intake stored — became exactly one case, that
the outboxes and the consumer's queue drained, and what was dead-lettered. The figures
are printed at the end of the run. Everything stops by itself and stays on loopback.
"""
import subprocess
from pathlib import Path

import pytest
import requests

from tests.faults.harness import burst, settle
from tests.fixtures import JPEG, wait_for
from tools import stack as stk

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["dispatch", "intake", "gateway", "identity"])
def test_a_service_killed_mid_burst_and_restarted_loses_and_doubles_nothing(stack, service):
    def kill_and_restart():
        stack.kill(service)
        stack.start(service)

    b = burst(stack, kill_and_restart)
    settle(stack, b, f"SIGKILL {service}")
    assert b.acked, "no report got through at all"


def test_rabbitmq_restarted_mid_burst_loses_and_doubles_nothing(stack):
    def restart_broker():
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)

    b = burst(stack, restart_broker)
    row = settle(stack, b, "restart RabbitMQ")
    # The services reconnected by themselves: all ready again, none restarted by us.
    for name in ("gateway", "intake", "dispatch"):
        stk.wait_ready(stack.st, name, timeout=60)
        assert stack.procs[name].poll() is None
    assert row["cases"] > 0


def _postgres_cluster() -> tuple[str, str]:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    return version, "main"


def test_postgresql_restarted_mid_burst_loses_and_doubles_nothing(stack):
    def restart_database():
        version, cluster = _postgres_cluster()
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster,
                        "restart", "-m", "fast"], check=True, timeout=120)

    b = burst(stack, restart_database)
    settle(stack, b, "restart PostgreSQL")
    # Requests that met the outage were told so (503, retryable), not left hanging.
    assert all(f in ("503",) or not f.isdigit() for f in b.failed), b.failed[:5]


def test_with_the_object_store_down_uploads_fail_clearly_and_text_reports_still_go(stack):
    resident = stack.client("resident-zhang")
    photo = resident.upload(JPEG)  # taken while the store was up
    stk.stop_pid(stack.st.run_dir / "s3.pid")
    try:
        # Uploads and reports with attachments get a clear, retryable error...
        r = resident.post("/v1/uploads", json={"content_type": "image/jpeg", "size": 1000})
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "/problems/object-store-unavailable"
        assert r.json()["detail_zh"]
        r = resident.report(attachments=[photo])
        assert r.status_code == 503 and r.json()["type"] == "/problems/object-store-unavailable"
        # ...while text-only reports are still accepted and become cases
        b = burst(stack, n=100)
        assert len(b.acked) == 100, b.failed[:5]
        settle(stack, b, "object store down")
    finally:
        stk.start_s3(stack.st)
    wait_for(lambda: resident.report(attachments=[photo]).status_code == 201, timeout=30,
             what="reports with photos once the store is back")


def test_a_message_that_keeps_failing_is_dead_lettered_and_the_queue_keeps_moving(stack):
    marker = "POISON-7f3a9c"
    stack.restart("dispatch", MINQING_POISON=f"dispatch.open_case:{marker}")
    try:
        b = burst(stack, poison_marker=marker)
        # Every other report got its case; the poisoned one went to the dead-letter queue
        # after its bounded attempts (the broker's delivery limit), with the reason.
        row = settle(stack, b, "poison message", expect_dead=1)
        assert row["cases"] == row["stored"] - 1
    finally:
        stack.restart("dispatch")
    assert requests.get(f"{stack.st.url('dispatch')}/health/ready").status_code == 200
