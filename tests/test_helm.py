"""The Helm chart, offline: rendered with helm-python-sdk, linted strictly, every manifest validated
with kubernetes-validate for the oldest and newest supported Kubernetes, and the safety properties
(security context, probes, no secret outside Secrets, schema rejecting typos, replica rules)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from bridge import pacing
from bridge.metrics import Metrics

CHART = Path(__file__).resolve().parents[1] / "helm" / "statusbridge"
K8S_VERSIONS = ["1.27", "1.37"]  # the chart's kubeVersion floor, and the newest kubernetes-validate knows
SECRETS = {
    "incidentio": {"apiKey": "canary-api-key-123"},
    "webhook": {"bearerToken": "canary-webhook-456"},
    "adminToken": "canary-admin-789",
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    chart = helm.Chart.load(CHART)
    merged = {**SECRETS, **(values or {})}
    out = chart.render(merged, name="sb", namespace="monitoring", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def test_lint_strict() -> None:
    report = helm.lint(CHART, SECRETS, strict=True)
    errors = [m for m in report["messages"] if m["severity"] >= 2]
    assert not errors, report
    assert not report["errors"], report


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "replicaCount": 3,
            "store": {"url": "postgresql://sb:pw@db/sb"},
            "podDisruptionBudget": {"enabled": True},
            "networkPolicy": {"enabled": True},
        },
        {"mode": "sidecar"},
    ],
)
def test_manifests_validate(version: str, values: dict[str, Any]) -> None:
    for doc in render(values):
        if doc["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # CRDs of prometheus-operator: not in the core schemas
        kubernetes_validate.validate(doc, version, strict=True)


def test_deployment_shape_and_security() -> None:
    docs = render()
    assert kinds(docs) == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "Secret",
        "Service",
    ]
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]
    assert "checksum/config" in pod["metadata"]["annotations"]
    (container,) = pod["spec"]["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"] and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["timeoutSeconds"] > pacing.STORE_PING_TIMEOUT, (
        "the kubelet must wait longer than /readyz waits for the store, to see its 503"
    )
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_secrets_never_outside_secrets() -> None:
    for values in ({}, {"store": {"url": "postgresql://sb:pw-canary@db/sb"}, "replicaCount": 2}):
        for doc in render(values):
            text = yaml.safe_dump(doc)
            if doc["kind"] == "Secret":
                continue
            for canary in ("canary-api-key-123", "canary-webhook-456", "canary-admin-789", "pw-canary"):
                assert canary not in text, (doc["kind"], canary)
                assert base64.b64encode(canary.encode()).decode() not in text


def test_sidecar_renders_only_config_and_secret_plus_a_template() -> None:
    assert kinds(render({"mode": "sidecar"})) == ["ConfigMap", "ConfigMap", "Secret"]


def test_extras_render() -> None:
    docs = render({"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}})
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds(docs))
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    alerts = {r["alert"] for r in rule["spec"]["groups"][0]["rules"]}
    assert {"StatusBridgeBlind", "StatusBridgePublicationsHeld", "StatusBridgeTakenOverLeftOpen"} <= alerts


def test_every_alert_reads_metrics_the_daemon_exposes_and_links_a_runbook_that_exists() -> None:
    docs = render({"prometheusRule": {"enabled": True}})
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "info": ["_info"]}
    exposed = {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }
    readme = (CHART.parents[1] / "README.md").read_text()
    for alert in rule["spec"]["groups"][0]["rules"]:
        for name in re.findall(r"statusbridge_[a-z_]+", alert["expr"]):
            assert name in exposed, f"{alert['alert']} reads {name}, which /metrics does not expose"
        anchor = alert["annotations"]["runbook"].split("#", 1)[1]
        assert f'<a id="{anchor}"></a>' in readme, f"{alert['alert']}: no runbook {anchor} in README.md"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "postgres"),
        ({"mode": "sidecar", "alertmanagerReplicas": 2}, "postgres"),
        ({"replicaCount": 2, "store": {"url": "sqlite:////data/x.db"}}, ""),
        ({"imgae": {"tag": "x"}}, "imgae"),
        ({"service": {"prot": 80}}, "prot"),
    ],
)
def test_bad_values_fail(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        render(values)
    assert message.lower() in str(err.value).lower()
