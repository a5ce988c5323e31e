"""Write base/prometheus-rule.yaml from deploy/prometheus/alerts.yml (the one source).

    python deploy/k8s/prometheus_rule.py           rewrite the PrometheusRule
    python deploy/k8s/prometheus_rule.py --check   exit 1 if it is out of date

The groups are re-emitted with every multi-line string as a literal block (`|`): kustomize
(go-yaml) mis-reads folded blocks (`>`) that contain more-indented lines and would add a
blank line to such a PromQL expression, so copying alerts.yml's text verbatim is not enough.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "prometheus" / "alerts.yml"
RULE = HERE / "base" / "prometheus-rule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by deploy/k8s/prometheus_rule.py: edit
# alerts.yml, then run `python deploy/k8s/prometheus_rule.py`. spec.groups must equal that
# file's groups (deploy/k8s/tests checks it).
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(alerts_text: str) -> str:
    groups = yaml.safe_load(alerts_text)["groups"]
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "minqing"}, "spec": {"groups": groups}}
    return HEADER + yaml.dump(rule, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                              width=100, default_flow_style=False)


def main(argv: list[str]) -> int:
    text = render(ALERTS.read_text(encoding="utf-8"))
    if "--check" in argv:
        if RULE.read_text(encoding="utf-8") != text:
            print(f"{RULE} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    RULE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
