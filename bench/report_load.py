"""Report-submission load benchmark on an isolated stack of its own.

    cd /work/main && PSYCOPG_WAIT_FUNC=wait_select \\
        .venv/bin/python -W ignore -m bench.report_load [--clients N] [--reports M] \\
        [--photo-every K]

It provisions a fresh stack (database `minqing_bench`, vhost `minqing_bench`, ports
8100-8103 and S3 on 8433, run dir .run/bench), measures idle RSS of each service, logs in
a few residents, warms up, then N client threads submit M reports through the gateway.
It waits until every acknowledged report has a case, reads submit-to-case latency from
the database, measures the broker's raw confirmed publish rate on the same machine in
the same run, prints the figures and always tears the stack down. A measurement: no
pass/fail.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

from tools import stack

ROOT = stack.ROOT
RUN_DIR = ROOT / ".run" / "bench"
PORT_OFFSET = 100
DB_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/minqing_bench"
AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/minqing_bench"
PASSWORD = "minqing-demo"
USERS = ["resident-zhang", "resident-li", "resident-wang", "patroller-zhao"]
CATEGORIES = ["dispute-noise", "hazard-rubbish", "hazard-fire", "dispute-parking",
              "help-elderly", "hazard-facility"]
POINTS = [(30.24215, 120.19330), (30.24115, 120.18708), (30.24175, 120.18090),
          (30.24900, 120.18119), (30.25005, 120.18706), (30.24990, 120.19312)]
DESCRIPTIONS = {
    "dispute-noise": "楼上深夜装修噪音扰民，已持续一周，请社区协调处理。",
    "hazard-rubbish": "小区门口垃圾堆放多日无人清运，气味很大。",
    "hazard-fire": "楼道内堆放大量纸箱杂物，堵塞消防通道，存在火灾隐患。",
    "dispute-parking": "有车辆长期占用消防通道停放，影响居民出行。",
    "help-elderly": "独居老人近几天未见出门，邻居担心其身体状况，请上门看看。",
    "hazard-facility": "路灯损坏不亮，夜间行人通行不便，请尽快维修。",
}
PHOTO = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x5a" * (20 * 1024 - 11)
RAW_MESSAGES = 3000
RAW_BATCH = 500
ERRORS_SHOWN = 5


# --- small helpers ------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {p: cpu_seconds(p) for p in pids}


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pids_named(*names: str) -> dict[str, list[int]]:
    """Processes by command name (read-only look at /proc, for CPU accounting)."""
    found: dict[str, list[int]] = {n: [] for n in names}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in found:
            found[comm].append(int(entry.name))
    return found


def scrape(url: str) -> dict[str, float]:
    """A service's Prometheus text, as {'name{labels}': value} (no parser needed)."""
    try:
        text = requests.get(f"{url}/metrics", timeout=10).text
    except requests.RequestException:
        return {}
    samples = {}
    for line in text.splitlines():
        if line.startswith("minqing_"):
            key, _, value = line.rpartition(" ")
            try:
                samples[key] = float(value)
            except ValueError:
                pass
    return samples


def metric_delta(before: dict, after: dict, name: str, **labels: str) -> float:
    """Sum over samples of `name` whose labels include `labels`, after minus before."""
    want = [f'{k}="{v}"' for k, v in labels.items()]

    def total(samples: dict) -> float:
        return sum(v for k, v in samples.items()
                   if k.split("{", 1)[0] == name and all(w in k for w in want))
    return total(after) - total(before)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the stack ------------------------------------------------------------------------

def bench_settings() -> stack.Settings:
    # A few users send every report: the per-user limit (a guard against one runaway
    # phone) is lifted, as the bench measures the pipeline, not the limiter.
    return stack.settings(run_dir=RUN_DIR, port_offset=PORT_OFFSET, DB_URI=DB_URI,
                          AMQP_URI=AMQP_URI, REPORT_RATE_PER_MIN="100000000",
                          REPORT_BURST="100000000", UPLOAD_RATE_PER_MIN="100000000",
                          UPLOAD_BURST="100000000")


def stop_stale(st: stack.Settings) -> None:
    """A previous bench run killed hard may have left its own processes: stop those only."""
    for pidfile in st.run_dir.glob("*.pid"):
        try:
            cmdline = Path(f"/proc/{int(pidfile.read_text())}/cmdline").read_bytes()
        except (OSError, ValueError):
            pidfile.unlink(missing_ok=True)
            continue
        if str(st.run_dir).encode() in cmdline or b"nameko" in cmdline:
            log(f"stopping a stale bench process from {pidfile.name}")
            stack.stop_pid(pidfile)
        else:
            pidfile.unlink(missing_ok=True)


def start_stack(st: stack.Settings) -> dict[str, int]:
    stop_stale(st)
    for old_log in (st.run_dir / "logs").glob("*.log"):  # the logs show this run only
        old_log.unlink()
    stack.delete_vhost(st.env["AMQP_URI"])
    stack.drop_database(st.env["DB_URI"])
    stack.start_s3(st)
    log(f"S3 on {st.env['S3_ENDPOINT']}; provisioning {DB_URI.rsplit('/', 1)[1]}")
    stack.provision(st)
    pids = {}
    for svc in stack.SERVICES:
        t0 = time.monotonic()
        pids[svc.name] = stack.start_service(st, svc.name).pid
        log(f"{svc.name} ready on {st.url(svc.name)} in {time.monotonic() - t0:.1f} s")
    return pids


def teardown(st: stack.Settings) -> None:
    log("tearing down the bench stack")
    for step in (lambda: stack.down(st), lambda: stack.delete_vhost(st.env["AMQP_URI"]),
                 lambda: stack.drop_database(st.env["DB_URI"])):
        try:
            step()
        except Exception as exc:  # keep tearing down the rest
            log(f"teardown step failed: {exc!r}")


# --- clients --------------------------------------------------------------------------

def login(gateway: str, username: str) -> str:
    resp = requests.post(f"{gateway}/v1/auth/token",
                         json={"username": username, "password": PASSWORD}, timeout=30)
    resp.raise_for_status()
    return resp.json()["access_token"]


def report_payload(i: int, attachments: list[str] | None = None) -> dict:
    category = CATEGORIES[i % len(CATEGORIES)]
    lat, lon = POINTS[(i // len(CATEGORIES)) % len(POINTS)]
    payload = {"category": category, "description": f"{DESCRIPTIONS[category]}（第{i}号）",
               "location": {"lat": lat, "lon": lon}}
    if attachments:
        payload["attachments"] = attachments
    return payload


def encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)   # seconds, POST /v1/reports only
    acked: list[str] = field(default_factory=list)         # report ids
    errors: list[tuple[int, str]] = field(default_factory=list)
    upload_errors: list[str] = field(default_factory=list)


class Client:
    """One thread's keep-alive sessions: the API (with a token) and S3 (without)."""

    def __init__(self, gateway: str, token: str):
        self.gateway = gateway
        self.reports_url = f"{gateway}/v1/reports"
        # The measured call goes over a bare http.client connection (kept alive): half
        # the client CPU of requests, and the generator shares two cores with the system.
        url = urlsplit(gateway)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        self.submit_headers = {"Authorization": f"Bearer {token}",
                               "Content-Type": "application/json"}
        self.api = requests.Session()
        self.api.headers.update({"Authorization": f"Bearer {token}",
                                 "Content-Type": "application/json"})
        self.s3 = requests.Session()  # presigned POSTs: an Authorization header would clash

    def upload_photo(self) -> str:
        resp = self.api.post(f"{self.gateway}/v1/uploads",
                             data=encode({"content_type": "image/jpeg", "size": len(PHOTO)}),
                             timeout=60)
        if resp.status_code != 201:
            raise RuntimeError(f"POST /v1/uploads {resp.status_code}: {resp.text[:300]}")
        grant = resp.json()
        # The ticket's form fields first, the file last (a presigned POST policy)
        sent = self.s3.post(grant["upload_url"], data=grant["fields"], timeout=60,
                            files={grant["file_field"]: ("photo.jpg", PHOTO, "image/jpeg")})
        if sent.status_code not in (200, 201, 204):
            raise RuntimeError(f"POST upload_url {sent.status_code}: {sent.text[:300]}")
        return grant["object_key"]

    def submit(self, body: bytes, result: Result) -> None:
        t0 = time.perf_counter()
        try:
            self.conn.request("POST", "/v1/reports", body=body, headers=self.submit_headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            result.latencies.append(time.perf_counter() - t0)
            result.errors.append((0, repr(exc)))
            self.conn.close()  # reconnects on the next request
            return
        result.latencies.append(time.perf_counter() - t0)
        if resp.status == 201:
            result.acked.append(json.loads(data)["id"])
        else:
            result.errors.append((resp.status, data[:300].decode("utf-8", "replace")))

    def close(self) -> None:
        self.conn.close()
        self.api.close()
        self.s3.close()


def run_load(gateway: str, tokens: list[str], clients: int, total: int, photo_every: int,
             first_index: int = 0) -> tuple[Result, float]:
    """`clients` threads share `total` reports; returns the merged result and the wall time."""
    # Bodies without photos are encoded before the clock starts: the generator shares
    # two cores with everything it measures.
    bodies = [None if photo_every and (i + 1) % photo_every == 0
              else encode(report_payload(first_index + i)) for i in range(total)]
    counter = itertools.count()  # next() on it is atomic under the GIL
    results = [Result() for _ in range(clients)]
    sessions = [Client(gateway, tokens[c % len(tokens)]) for c in range(clients)]
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def worker(client: Client, result: Result) -> None:
        start.wait()
        while not stop.is_set():
            i = next(counter)
            if i >= total:
                return
            body = bodies[i]
            if body is None:
                try:
                    key = client.upload_photo()
                except Exception as exc:
                    result.upload_errors.append(repr(exc)[:300])
                    continue
                body = encode(report_payload(first_index + i, [key]))
            client.submit(body, result)

    threads = [threading.Thread(target=worker, args=(sessions[c], results[c]), daemon=True)
               for c in range(clients)]
    for t in threads:
        t.start()
    try:
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
        wall = time.perf_counter() - t0
    finally:
        stop.set()
        for s in sessions:
            s.close()
    merged = Result()
    for r in results:
        merged.latencies += r.latencies
        merged.acked += r.acked
        merged.errors += r.errors
        merged.upload_errors += r.upload_errors
    return merged, wall


# --- cases ----------------------------------------------------------------------------

def wait_for_cases(engine: sa.Engine, expected: int, timeout: float) -> tuple[int, float]:
    t0 = time.monotonic()
    count = 0
    while True:
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM dispatch.case_reports")).scalar()
        if count >= expected or time.monotonic() - t0 > timeout:
            return count, time.monotonic() - t0
        time.sleep(0.2)


def case_latencies(engine: sa.Engine, report_ids: set[str]) -> list[tuple[float, float]]:
    """Per acknowledged report: (submitted -> case opened, submitted -> event marked
    published by intake's outbox relay, i.e. after the broker's confirm), in seconds."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT r.id::text, EXTRACT(EPOCH FROM (c.opened_at - r.submitted_at)), "
            "       EXTRACT(EPOCH FROM (o.published_at - r.submitted_at)) "
            "FROM intake.reports r "
            "JOIN dispatch.case_reports cr ON cr.report_id = r.id "
            "JOIN dispatch.cases c ON c.id = cr.case_id "
            "LEFT JOIN intake.outbox o ON o.subject = r.id::text "
            "     AND o.type = 'cn.minqing.report.submitted.v1'")).all()
    return [(float(opened), float("nan") if published is None else float(published))
            for rid, opened, published in rows if rid in report_ids]


# --- the broker on its own ------------------------------------------------------------

def raw_publish_rates(amqp_uri: str, count: int = RAW_MESSAGES) -> dict[str, float]:
    """msgs/s of persistent messages into throwaway queues: one at a time with confirms
    (kombu `confirm_publish`) into a quorum queue (what the services' queues are) and a
    classic one, and in confirmed batches (the outbox relay's ConfirmingPublisher)."""
    from kombu import Connection

    from minqing_kernel.outbox import ConfirmingPublisher

    body = encode({"specversion": "1.0", "type": "cn.minqing.report.submitted.v1",
                   "source": "/minqing/intake", "id": str(uuid.uuid4()),
                   "data": report_payload(0)})
    rates = {}
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        for kind in ("quorum", "classic"):
            queue = f"bench.raw-publish.{kind}.{uuid.uuid4().hex[:8]}"
            channel.queue_declare(queue=queue, durable=True, auto_delete=False,
                                  arguments={"x-queue-type": kind})
            try:
                producer = conn.Producer(channel)
                t0 = time.perf_counter()
                for _ in range(count):
                    producer.publish(body, exchange="", routing_key=queue, delivery_mode=2,
                                     content_type="application/cloudevents+json",
                                     content_encoding="binary")
                rates[f"one-{kind}"] = count / (time.perf_counter() - t0)
                if kind != "quorum":
                    continue
                publisher = ConfirmingPublisher(amqp_uri)
                try:
                    t0 = time.perf_counter()
                    sent = 0
                    while sent < count:
                        n = min(RAW_BATCH, count - sent)
                        publisher.publish([("", queue, body, {})] * n)
                        sent += n
                    rates["batched-quorum"] = count / (time.perf_counter() - t0)
                finally:
                    publisher.close()
            finally:
                channel.queue_delete(queue=queue)
    return rates


# --- the run --------------------------------------------------------------------------

def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_load",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--reports", type=int, default=3000, help="reports in total (3000)")
    parser.add_argument("--photo-every", type=int, default=0,
                        help="every K-th report carries a ~20 KB photo (0 = none)")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up reports (50)")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds idle before reading RSS (5)")
    parser.add_argument("--case-timeout", type=float, default=120.0,
                        help="how long to wait for every report's case (120 s)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.reports < 1 or args.photo_every < 0:
        parser.error("--clients and --reports must be >= 1, --photo-every >= 0")

    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM tears down like Ctrl-C does

    st = bench_settings()
    try:
        return run(st, args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        teardown(st)


def run(st: stack.Settings, args) -> int:
    t_start = time.monotonic()
    pids = start_stack(st)
    log(f"stack up in {time.monotonic() - t_start:.1f} s; idle {args.idle:.0f} s for RSS")
    time.sleep(args.idle)
    idle_rss = {name: rss_mb(pid) for name, pid in pids.items()}
    log("idle RSS (MB): " + "  ".join(f"{n} {v:.1f}" for n, v in idle_rss.items()))

    gateway = st.gateway
    tokens = [login(gateway, user) for user in USERS]
    log(f"logged in {len(tokens)} users; warming up with {args.warmup} reports")
    if args.warmup:
        warm, _ = run_load(gateway, tokens, min(4, args.clients), args.warmup,
                           args.photo_every, first_index=10**6)
        if warm.errors or warm.upload_errors:
            log(f"warm-up errors: {(warm.errors + warm.upload_errors)[:ERRORS_SHOWN]}")
        warm_acked = len(warm.acked)
    else:
        warm_acked = 0
    engine = sa.create_engine(st.env["DB_URI"], pool_size=1, max_overflow=0)
    count, _ = wait_for_cases(engine, warm_acked, args.case_timeout)

    others = pids_named("postgres", "beam.smp", "weed")
    watched = {**{n: [p] for n, p in pids.items()}, **others}
    cpu_before = {n: cpu_by_pid(ps) for n, ps in watched.items()}
    own_before = time.process_time()
    metrics_before = {svc.name: scrape(st.url(svc.name)) for svc in stack.SERVICES}

    log(f"load: {args.reports} reports from {args.clients} clients"
        + (f", a photo every {args.photo_every}" if args.photo_every else ""))
    result, wall = run_load(gateway, tokens, args.clients, args.reports, args.photo_every)
    load_end = time.monotonic()
    log(f"load done in {wall:.1f} s; waiting for cases")
    expected = warm_acked + len(result.acked)
    count, _ = wait_for_cases(engine, expected, args.case_timeout)
    drain = time.monotonic() - load_end
    cpu_after = {n: cpu_by_pid(ps) for n, ps in watched.items()}
    own_cpu = time.process_time() - own_before
    metrics_after = {svc.name: scrape(st.url(svc.name)) for svc in stack.SERVICES}
    lat = case_latencies(engine, set(result.acked))
    cms = [opened * 1000 for opened, _ in lat]
    pms = [published * 1000 for _, published in lat if published == published]
    engine.dispose()

    log("raw broker publish with confirms")
    raw = raw_publish_rates(st.env["AMQP_URI"])
    one, batched = raw["one-quorum"], raw["batched-quorum"]

    for status, text in result.errors[:ERRORS_SHOWN]:
        print(f"  error {status}: {text}")
    for text in result.upload_errors[:ERRORS_SHOWN]:
        print(f"  upload error: {text}")

    acked = len(result.acked)
    rate = acked / wall if wall else float("nan")
    ms = [x * 1000 for x in result.latencies]
    cases_for_load = count - warm_acked
    busy = wall + drain
    # Only processes alive at both readings (one that exited reads 0 afterwards).
    cpu = {n: sum(cpu_after[n][p] - cpu_before[n][p] for p in cpu_before[n]
                  if cpu_after[n][p] > 0) for n in watched}

    def worker_ms(svc: str, metric: str, **labels: str) -> str:
        b, a = metrics_before[svc], metrics_after[svc]
        n = metric_delta(b, a, f"{metric}_count", **labels)
        return f"{1000 * metric_delta(b, a, f'{metric}_sum', **labels) / n:.1f}" if n else "?"

    published = metric_delta(metrics_before["intake"], metrics_after["intake"],
                             "minqing_outbox_published_total")
    batches = metric_delta(metrics_before["intake"], metrics_after["intake"],
                           "minqing_outbox_publish_seconds_count")
    load1, load5, load15 = os.getloadavg()
    photo = f", photo every {args.photo_every}" if args.photo_every else ""
    print()
    print(f"reports acknowledged   {acked} / {args.reports} (errors {len(result.errors)}"
          + (f", upload errors {len(result.upload_errors)}" if result.upload_errors else "")
          + ")")
    print(f"throughput             {rate:.1f} reports/s (wall {wall:.1f} s, "
          f"{args.clients} clients{photo})")
    print(f"submit latency         p50 {pct(ms, 50):.1f} ms   p99 {pct(ms, 99):.1f} ms   "
          f"max {max(ms, default=float('nan')):.1f} ms")
    print(f"submit->case opened    p50 {pct(cms, 50):.1f} ms   p99 {pct(cms, 99):.1f} ms   "
          f"(cases {cases_for_load}/{acked}, last one {drain:.1f} s after the load)"
          + (f"   mean {statistics.fmean(cms):.1f} ms" if cms else ""))
    print(f"  of which outbox      submit->event published p50 {pct(pms, 50):.1f} ms   "
          f"p99 {pct(pms, 99):.1f} ms   (intake's relay, after the broker's confirm)")
    print(f"worker mean (ms)       gateway submit_report "
          f"{worker_ms('gateway', 'minqing_entrypoint_seconds', entrypoint='submit_report')}  "
          f"intake submit_report "
          f"{worker_ms('intake', 'minqing_entrypoint_seconds', entrypoint='submit_report')}  "
          f"dispatch open_case "
          f"{worker_ms('dispatch', 'minqing_event_handle_seconds')}  intake outbox batch "
          f"{worker_ms('intake', 'minqing_outbox_publish_seconds')} "
          f"(mean {published / batches if batches else float('nan'):.1f} events/batch)")
    print("idle RSS (MB)          " + "  ".join(f"{n} {v:.1f}" for n, v in idle_rss.items()))
    print(f"broker publish (raw)   one-at-a-time confirmed {one:.0f} msg/s; "
          f"batched confirmed {batched:.0f} msg/s  (quorum queue, persistent; "
          f"classic queue one-at-a-time {raw['one-classic']:.0f} msg/s)")
    print(f"end-to-end / raw       {rate / one:.2f} of one-at-a-time; "
          f"{rate / batched:.3f} of batched")
    print("CPU s during load      " + "  ".join(
        f"{n} {cpu[n]:.1f}" for n in watched) + f"  bench {own_cpu:.1f}  "
        f"(of {busy * (os.cpu_count() or 1):.0f} core-s in {busy:.1f} s)")
    print(f"machine                {os.cpu_count()} cores; load average {load1:.2f} "
          f"{load5:.2f} {load15:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
