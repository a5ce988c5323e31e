"""A real Prometheus server scrapes every service and sees reports go through."""
import shutil
import socket
import subprocess

import pytest
import requests
import yaml

from tests.fixtures import ROOT, wait_for
from tools.stack import SERVICES

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(stack, tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is missing: `make test` installs it"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
        "scrape_configs": [{"job_name": svc.name, "static_configs": [
            {"targets": [stack.st.env[svc.port_var]]}]} for svc in SERVICES],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ok(f"{base}/-/ready"), timeout=30, what="Prometheus to start")
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def query(base: str, promql: str) -> list:
    r = requests.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def value(base: str, promql: str) -> float:
    result = query(base, promql)
    return float(result[0]["value"][1]) if result else 0.0


def test_prometheus_scrapes_every_service_and_counts_a_submitted_report(stack, prometheus):
    # Given every service's /metrics is scraped
    wait_for(lambda: value(prometheus, "sum(up)") == len(SERVICES), timeout=30,
             what="every target up")
    before = value(prometheus, 'sum(minqing_reports_submitted_total{category="help-elderly"})')

    # When a report goes through
    r = stack.client("resident-li").report(category="help-elderly",
                                          description="独居老人家中漏水需要帮助")
    assert r.status_code == 201, r.text

    # Then Prometheus sees the count move, and the case it opened
    wait_for(lambda: value(prometheus, 'sum(minqing_reports_submitted_total'
                                       '{category="help-elderly"})') > before,
             timeout=30, what="minqing_reports_submitted_total to move")
    wait_for(lambda: value(prometheus, 'sum(minqing_case_transitions_total'
                                       '{action="open"})') >= 1,
             timeout=30, what="minqing_case_transitions_total to move")
    # And the project's alert rules are loaded and healthy
    groups = requests.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert rules and all(rule["health"] == "ok" for rule in rules)
