"""Fixtures for tests that run against the real servers.

One stack per test session, isolated from a developer's running one: its own database,
RabbitMQ vhost, S3 server and ports (see SLOT). The
services run as real processes started by tools.stack, exactly as `make run` does.
"""
from __future__ import annotations

import fcntl
import itertools
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests import asyncapi_contract
from tools import stack as stk

ROOT = Path(__file__).resolve().parent.parent
# Each test session gets its own database, vhost and ports, so two runs (a developer's
# and CI's, or two developers') never share state. Ports move in steps of 2000: one
# stack spans 8000-9336 plus its offset (tools.stack.seaweedfs_ports).
def _claim_slot() -> tuple[int, object]:
    """The first slot no other running test session holds (a lock held until exit)."""
    for slot in range(12):
        handle = open(f"/tmp/minqing-test-slot-{slot}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, handle
        except BlockingIOError:
            handle.close()
    raise RuntimeError("12 test sessions are running already")


SLOT, _SLOT_LOCK = _claim_slot()
TEST_DB = f"postgresql+psycopg://postgres@127.0.0.1:5432/minqing_test_{SLOT}"
TEST_AMQP = f"amqp://guest:guest@127.0.0.1:5672/minqing_test_{SLOT}"
PORT_OFFSET = 2000 * (1 + SLOT)
PASSWORD = "minqing-demo"
# A point inside each community of the reference data, and the unit its default rule picks.
IN_SHIBANQIAO = {"lat": 30.24115, "lon": 120.18708}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8


def wait_for(check: Callable, timeout: float = 20.0, what: str = "condition",
             interval: float = 0.05):
    """Poll until check() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def post_upload(ticket: dict, data: bytes, content_type: str | None = None,
                **field_overrides) -> requests.Response:
    """Send a file to the store as a phone does with a ticket from POST /v1/uploads: a
    form POST of the ticket's fields, the file last (the store reads fields before it)."""
    fields = {**ticket["fields"], **field_overrides}
    return requests.post(ticket["upload_url"], data=fields, timeout=60,
                         files={ticket["file_field"]: ("upload", data, content_type
                                                       or fields["Content-Type"])})


class Client:
    """A signed-in user of the gateway."""

    def __init__(self, base: str, username: str | None = None, on_response=None):
        self.base = base
        self.http = requests.Session()
        if on_response is not None:  # e.g. to inspect every answer, the sign-in's too
            self.http.hooks["response"].append(on_response)
        self.user = None
        if username:
            r = self.http.post(f"{base}/v1/auth/token",
                               json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.user = r.json()["user"]
            self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path, **kw):
        return self.http.get(self.base + path, **kw)

    def post(self, path, **kw):
        return self.http.post(self.base + path, **kw)

    def upload(self, data: bytes = JPEG, content_type: str = "image/jpeg",
               declared_size: int | None = None) -> str:
        r = self.post("/v1/uploads", json={"content_type": content_type,
                                           "size": declared_size or len(data)})
        assert r.status_code == 201, r.text
        ticket = r.json()
        sent = post_upload(ticket, data, content_type)
        assert sent.status_code == 204, sent.text
        return ticket["object_key"]

    def report(self, headers: dict | None = None, **fields) -> requests.Response:
        body = {"category": "dispute-noise", "description": "楼上深夜装修，噪音扰民",
                "location": IN_SHIBANQIAO}
        body.update(fields)
        return self.post("/v1/reports", json=body, headers=headers)


class Stack:
    def __init__(self, st: stk.Settings):
        self.st = st
        self.gateway = st.gateway
        # pre-ping: the fault tests restart PostgreSQL under this engine's connections
        self.engine = sa.create_engine(st.env["DB_URI"], pool_size=2, pool_pre_ping=True)
        self.procs: dict = {}
        self._seq = itertools.count()

    @property
    def sim_admin_headers(self) -> dict:
        """What the 平安365 simulator's /_sim admin API requires (tools.stack makes it)."""
        return {"Authorization": f"Bearer {self.st.env['PINGAN365_SIM_TOKEN']}"}

    def sms_sent(self, phone: str) -> list[dict]:
        """What the SMS simulator "sent" to `phone`, oldest first (its /_sim admin API)."""
        r = requests.get(f"{self.st.env['SMS_ENDPOINT']}_sim/messages", params={"phone": phone},
                         headers={"Authorization": f"Bearer {self.st.env['SMS_SIM_TOKEN']}"},
                         timeout=5)
        r.raise_for_status()
        return r.json()["items"]

    def client(self, username: str | None = None) -> Client:
        return Client(self.gateway, username)

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def start(self, name: str, **extra_env) -> None:
        self.procs[name] = stk.start_service(self.st, name, extra_env or None)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown handlers, no acks, no commits."""
        proc = self.procs[name]
        proc.kill()
        proc.wait(10)

    def restart(self, name: str, **extra_env) -> None:
        stk.stop_pid(self.st.run_dir / f"{name}.pid")
        self.start(name, **extra_env)

    def metric(self, service: str, name: str, **labels) -> float:
        """The sum of a metric's samples matching `labels`, scraped from /metrics now."""
        text = requests.get(f"{self.st.url(service)}/metrics", timeout=5).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    total += sample.value
        return total

    @contextmanager
    def frozen_at(self, service: str, point: str):
        """Restart `service` so that it hangs at fault point `point` (minqing_kernel.faults).
        The block gets a function that waits until it is there and SIGKILLs it; leaving
        the block restarts the service normally, whatever happened."""
        marker = self.st.run_dir / f"fault-{uuid.uuid4().hex}"
        self.restart(service, MINQING_FAULT=point, MINQING_FAULT_MARKER=str(marker))

        def kill_there() -> None:
            wait_for(marker.exists, what=f"{service} to reach {point}")
            self.kill(service)
        try:
            yield kill_there
        finally:
            self.restart(service)

    def case_for(self, report_id: str) -> str | None:
        return self.scalar("SELECT case_id::text FROM dispatch.case_reports "
                           "WHERE report_id = :r", r=report_id)


@pytest.fixture(scope="session")
def stack():
    st = stk.settings(run_dir=ROOT / ".run" / f"test-{SLOT}", port_offset=PORT_OFFSET,
                      DB_URI=TEST_DB,
                      AMQP_URI=TEST_AMQP, LOG_LEVEL="INFO",
                      # Tests send bursts of reports as one user: the per-user limit is
                      # lifted here, and tightened only by the test of the limit itself
                      # (tests/e2e/test_access_matrix.py restarts the gateway for it).
                      REPORT_RATE_PER_MIN="100000", REPORT_BURST="100000",
                      UPLOAD_RATE_PER_MIN="100000", UPLOAD_BURST="100000",
                      # Every test signs in from 127.0.0.1: the per-client sign-in limit
                      # is lifted likewise (tests/e2e/test_auth_hardening.py tightens it);
                      # X-Forwarded-For is believed so tests can play other clients.
                      LOGIN_CLIENT_BURST="100000", LOGIN_CLIENT_RATE_PER_MIN="100000",
                      TRUSTED_PROXIES="1",
                      # The 平安365 bridge at test speed: fast timers, short timeouts,
                      # a circuit that opens and half-opens within a test.
                      INTEGRATION365_SEND_INTERVAL_S="0.2",
                      INTEGRATION365_POLL_INTERVAL_S="0.3",
                      INTEGRATION365_RECONCILE_INTERVAL_S="1",
                      PINGAN365_TIMEOUT_S="1", PINGAN365_CIRCUIT_THRESHOLD="3",
                      PINGAN365_CIRCUIT_COOLDOWN_S="1", PINGAN365_BACKOFF_BASE_S="0.2",
                      PINGAN365_BACKOFF_CAP_S="1")
    stk.down(st, include_s3=False)
    shutil.rmtree(st.run_dir / "logs", ignore_errors=True)  # this session's logs only
    stk.drop_database(TEST_DB)
    stk.delete_vhost(TEST_AMQP)
    stk.start_s3(st)
    stk.start_simulator(st)
    stk.start_sms_simulator(st)
    stk.provision(st)
    s = Stack(st)
    emitted, problems = 0, []
    try:
        for svc in stk.SERVICES:
            s.start(svc.name)
        yield s
        # Every event this session's tests made the services emit is what
        # contracts/asyncapi.yaml promises on its exchange and routing key.
        emitted, problems = asyncapi_contract.emitted_mismatches(s.engine)
    finally:
        s.engine.dispose()
        stk.down(st)
        stk.delete_vhost(TEST_AMQP)
        stk.drop_database(TEST_DB)
    if problems:
        pytest.fail(f"{len(problems)} of the {emitted} events emitted in this session do not "
                    "match contracts/asyncapi.yaml:\n" + "\n".join(problems[:50]),
                    pytrace=False)


@pytest.fixture(scope="session")
def partner_user(stack):
    """Makes a partner platform's RabbitMQ user in this session's vhost, exactly as
    `make partner NAME=...` does, and returns (user name, its AMQP URI). Broker users are
    not per vhost, so names carry the slot and the users are removed at the end."""
    from urllib.parse import quote, urlparse

    from tools import partners

    broker = partners.Broker.from_uri(TEST_AMQP)
    made: list[str] = []

    def make(name: str) -> tuple[str, str]:
        name = f"{name}_s{SLOT}"
        password = partners.add(broker, name)
        made.append(name)
        user = partners.user_of(name)
        url = urlparse(TEST_AMQP)
        return user, (f"amqp://{quote(user)}:{quote(password)}@{url.hostname}:"
                      f"{url.port or 5672}{url.path}")

    yield make
    for name in made:
        partners.remove(broker, name)
