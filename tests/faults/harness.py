"""A burst of reports while something fails, and the checks that nothing was lost.

`burst()` sends a few hundred reports through the gateway from several threads and
calls `fault()` part-way through. `settle()` then waits (bounded) until everything has
drained and checks, in the database and the broker: every report intake stored (every
acknowledged one among them) has exactly one case, both outboxes are published, the
consumer's queue is empty, and it counts what was dead-lettered.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests
from kombu import Connection

from tests.fixtures import IN_SHIBANQIAO, PASSWORD, wait_for

RESIDENTS = ("resident-zhang", "resident-li", "resident-wang", "patroller-zhao")
FIGURES: list[dict] = []  # one row per fault, printed at the end of the session


@dataclass
class Burst:
    tag: str
    sent: int = 0
    acked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    fault_at: float | None = None
    ended: float | None = None


def _token(base: str, username: str) -> str:
    r = requests.post(f"{base}/v1/auth/token",
                      json={"username": username, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def burst(stack, fault=None, n: int = 300, threads: int = 6, fault_after: float = 0.3,
          poison_marker: str | None = None) -> Burst:
    """Submit `n` reports; call `fault()` once `fault_after` of them have been sent."""
    b = Burst(tag=uuid.uuid4().hex[:12])
    tokens = [_token(stack.gateway, u) for u in RESIDENTS]
    counter = itertools.count()
    lock = threading.Lock()
    fault_due = threading.Event()

    def worker(k: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[k % len(tokens)]}"
        while (i := next(counter)) < n:
            if i == int(n * fault_after):
                fault_due.set()
            text = f"楼下商铺深夜噪音扰民 burst-{b.tag} #{i}"
            if poison_marker and i == n // 2:
                text += f" {poison_marker}"
            try:
                r = session.post(f"{stack.gateway}/v1/reports", timeout=30, json={
                    "category": "dispute-noise", "description": text,
                    "location": IN_SHIBANQIAO})
                outcome = r.json()["id"] if r.status_code == 201 else f"{r.status_code}"
            except (requests.RequestException, ValueError) as exc:
                outcome = type(exc).__name__
                time.sleep(0.05)  # the gateway is down: don't spin
            with lock:
                b.sent += 1
                (b.acked if r_ok(outcome) else b.failed).append(outcome)

    workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    if fault is not None:
        fault_due.wait(120)
        b.fault_at = time.monotonic()
        fault()
    for w in workers:
        w.join(300)
    b.ended = time.monotonic()
    if b.fault_at is None:
        b.fault_at = b.ended
    return b


def r_ok(outcome: str) -> bool:
    return len(outcome) == 36 and outcome.count("-") == 4


def queue_depth(stack, queue: str) -> int:
    """Ready plus unacknowledged messages, from the broker itself."""
    vhost = urlparse(stack.st.env["AMQP_URI"]).path.lstrip("/") or "/"
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name",
                          "messages_ready", "messages_unacknowledged", "--formatter", "json"],
                         capture_output=True, text=True, check=True).stdout
    for q in json.loads(out):
        if q["name"] == queue:
            return int(q["messages_ready"]) + int(q["messages_unacknowledged"])
    raise AssertionError(f"no queue {queue}")


def take_dead_letters(stack, tag: str) -> list:
    """Remove this burst's messages from dispatch's dead-letter queue; return them."""
    mine, others = [], []
    with Connection(stack.st.env["AMQP_URI"]) as conn:
        queue = conn.SimpleQueue("dispatch.dead-letter", no_ack=False)
        try:
            while True:
                try:
                    message = queue.get(block=True, timeout=0.5)
                except queue.Empty:
                    break
                body = message.body if isinstance(message.body, bytes) else \
                    str(message.body).encode()
                (mine if tag.encode() in body else others).append(message)
            for message in mine:
                message.ack()
            for message in others:
                message.requeue()
        finally:
            queue.close()
    return mine


def settle(stack, b: Burst, fault_name: str, expect_dead: int = 0,
           timeout: float = 180) -> dict:
    like = f"%burst-{b.tag} #%"

    def drained() -> bool:
        for name, proc in stack.procs.items():  # a service that died will not drain
            assert proc.poll() is None, (f"{name} exited ({proc.returncode}) during "
                                         f"{fault_name}; see {stack.st.run_dir}/logs")
        stored = stack.scalar("SELECT count(*) FROM intake.reports WHERE description LIKE :t",
                              t=like)
        cased = stack.scalar(
            "SELECT count(*) FROM dispatch.case_reports cr JOIN intake.reports r "
            "ON r.id = cr.report_id WHERE r.description LIKE :t", t=like)
        unpublished = stack.scalar(
            "SELECT (SELECT count(*) FROM intake.outbox WHERE published_at IS NULL) + "
            "(SELECT count(*) FROM dispatch.outbox WHERE published_at IS NULL)")
        return (cased + expect_dead == stored and unpublished == 0
                and queue_depth(stack, "dispatch.open_case") == 0)

    wait_for(drained, timeout=timeout, interval=0.25, what=f"the system to drain after "
             f"{fault_name}")
    drain_s = time.monotonic() - b.fault_at
    stored_ids = {str(r) for r in _ids(stack, "SELECT id FROM intake.reports "
                                              "WHERE description LIKE :t", t=like)}
    # Every report the gateway acknowledged was stored...
    assert set(b.acked) <= stored_ids, f"{len(set(b.acked) - stored_ids)} acked reports lost"
    # ...and every stored report has exactly one case (none has two, no case is shared).
    per_report = _ids(stack, "SELECT count(*) FROM dispatch.cases c, unnest(c.report_ids) rid "
                             "JOIN intake.reports r ON r.id = rid WHERE r.description LIKE :t "
                             "GROUP BY rid", t=like)
    duplicates = sum(1 for count in per_report if count != 1)
    dead = take_dead_letters(stack, b.tag)
    row = {"fault": fault_name, "sent": b.sent, "acknowledged": len(b.acked),
           "stored": len(stored_ids), "cases": len(per_report), "duplicates": duplicates,
           "dead_lettered": len(dead), "drain_s": round(drain_s, 1)}
    FIGURES.append(row)
    assert duplicates == 0, row
    assert len(per_report) + expect_dead == len(stored_ids), row
    assert len(dead) == expect_dead, row
    return row


def _ids(stack, sql: str, **params) -> list:
    import sqlalchemy as sa
    with stack.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).scalars())
