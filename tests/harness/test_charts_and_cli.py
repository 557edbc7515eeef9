"""Stand-in charts and their repository; the simulated ``aws eks get-token``."""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request

import pytest
import yaml

from aiplatform.catalog.registry import ADD_ONS
from tools.e2e.charts import ChartRepository, chart_archive, write_repository
from tools.e2e.cloud.aws_cli import get_token
from tools.e2e.cloud.store import CloudStore, ClusterAccess


def members(archive: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}


def test_crds_sit_where_the_real_chart_puts_them():
    prometheus = members(chart_archive("kube-prometheus-stack", "88.5.3"))
    eso = members(chart_archive("external-secrets", "2.10.0"))
    assert "kube-prometheus-stack/crds/podmonitors.monitoring.coreos.com.yaml" in prometheus
    assert "external-secrets/templates/crds/externalsecrets.external-secrets.io.yaml" in eso
    crd = yaml.safe_load(eso["external-secrets/templates/crds/externalsecrets.external-secrets.io.yaml"])
    assert crd["spec"]["versions"][0]["name"] == "v1"
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"]
    chart = yaml.safe_load(prometheus["kube-prometheus-stack/Chart.yaml"])
    assert (chart["name"], chart["version"]) == ("kube-prometheus-stack", "88.5.3")


@pytest.mark.parametrize("addon", ADD_ONS, ids=lambda addon: addon.chart)
def test_each_stand_in_holds_its_descriptors_crds_and_node_agent(addon):
    files = set(members(chart_archive(addon.chart, addon.version)))
    folder = "templates/crds" if addon.crds_in_templates else "crds"
    crds = {f for f in files if "/crds/" in f}
    assert crds == {f"{addon.chart}/{folder}/{crd.plural}.{crd.group}.yaml" for crd in addon.crds}
    assert (f"{addon.chart}/templates/node-agent.yaml" in files) == (addon.node_agent_values is not None)


def test_node_agents_are_placed_by_the_values_the_real_chart_reads():
    plugin = members(chart_archive("nvidia-device-plugin", "0.20.0"))[
        "nvidia-device-plugin/templates/node-agent.yaml"
    ]
    exporter = members(chart_archive("kube-prometheus-stack", "88.5.3"))[
        "kube-prometheus-stack/templates/node-agent.yaml"
    ]
    assert "{{- with .Values.tolerations }}" in plugin
    assert '{{- with ((index .Values "prometheus-node-exporter") | default dict).tolerations }}' in exporter
    assert "node-agent.yaml" not in "".join(members(chart_archive("external-secrets", "2.10.0")))


def test_the_repository_serves_an_index_with_each_charts_digest(tmp_path):
    folder = write_repository(tmp_path, {"external-secrets": "2.10.0", "cluster-autoscaler": "9.53.0"})
    with ChartRepository(folder) as repo:
        assert repo.url.startswith("http://127.0.0.1:")
        index = yaml.safe_load(urllib.request.urlopen(f"{repo.url}/index.yaml", timeout=5).read())
        entry = index["entries"]["external-secrets"][0]
        archive = urllib.request.urlopen(f"{repo.url}/{entry['urls'][0]}", timeout=5).read()
    assert entry["version"] == "2.10.0"
    assert entry["digest"] == hashlib.sha256(archive).hexdigest()


@pytest.fixture
def store(tmp_path) -> CloudStore:
    store = CloudStore(tmp_path)
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    store.set_cluster(ClusterAccess("https://127.0.0.1:6443", "static-token", str(ca)))
    store.put("aws:eks/cluster:Cluster", "ai-dev", "urn:c", {"name": "ai-dev"}, {"name": "ai-dev"})
    store.put(
        "aws:eks/accessEntry:AccessEntry",
        "ai-dev:admins",
        "urn:a",
        {"principalArn": "arn:aws:iam::123456789012:role/platform-admins"},
        {},
    )
    return store


def test_get_token_answers_for_an_existing_cluster_and_an_admitted_role(store):
    credential = get_token(store, "ai-dev", "arn:aws:iam::123456789012:role/platform-admins")
    assert credential["kind"] == "ExecCredential"
    assert credential["status"]["token"] == "static-token"


def test_get_token_refuses_an_unknown_cluster_and_a_role_without_access_entry(store):
    with pytest.raises(SystemExit, match="No cluster found for name: ai-prod"):
        get_token(store, "ai-prod", None)
    with pytest.raises(SystemExit, match="has no access entry"):
        get_token(store, "ai-dev", "arn:aws:iam::123456789012:role/someone-else")
