"""The stand-in charts with the real CRDs and the objects of the real charts the program relies on; the
strict dry-run's view of a custom resource (pure parts: the generation itself runs in make e2e)."""

from __future__ import annotations

import io
import json
import re
import tarfile

import yaml

from aiplatform.addons.ingress import IngressControllerArgs, nginx_values
from tools.e2e.charts import CHART_OBJECTS, chart_archive
from tools.e2e.crds import _comparable
from tools.e2e.strict_dry_run import _schema_kind, applied_object


def members(archive: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}


REAL_EXTERNAL_SECRET = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "externalsecrets.external-secrets.io"},
    "spec": {
        "group": "external-secrets.io",
        "names": {"kind": "ExternalSecret", "plural": "externalsecrets"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}},
            }
        ],
    },
}


def test_a_stand_in_installs_the_real_crd_it_is_given_and_an_open_one_for_the_rest():
    files = members(
        chart_archive(
            "external-secrets", "2.10.0", {"externalsecrets.external-secrets.io": REAL_EXTERNAL_SECRET}
        )
    )
    real = yaml.safe_load(files["external-secrets/templates/crds/externalsecrets.external-secrets.io.yaml"])
    assert real == REAL_EXTERNAL_SECRET
    other = yaml.safe_load(files["external-secrets/templates/crds/secretstores.external-secrets.io.yaml"])
    assert other["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"]


def test_the_ingress_nginx_stand_in_renders_the_charts_ingress_class_from_the_programs_values():
    files = members(chart_archive("ingress-nginx", "4.15.1"))
    template = files["ingress-nginx/templates/controller-ingressclass.yaml"]
    defaults = yaml.safe_load(files["ingress-nginx/values.yaml"])["controller"]["ingressClassResource"]
    # The real chart's defaults (4.15.1 values.yaml): the class ``nginx`` for ``k8s.io/ingress-nginx``.
    assert (defaults["name"], defaults["enabled"], defaults["controllerValue"]) == (
        "nginx",
        True,
        "k8s.io/ingress-nginx",
    )
    read = set(re.findall(r"\$class\.(\w+)", template))
    args = IngressControllerArgs(
        provider=None, cluster_name="c", region="us-east-1", vpc_id="v", identity=None,
        alb_chart_version="3.5.0", controller="nginx", nginx_chart_version="4.15.1", tls_secret_name="t",
    )  # fmt: skip
    # Every value the program sets for the class is one the template reads.
    assert set(nginx_values(args)["controller"]["ingressClassResource"]) <= read
    assert "spec:\n  controller: {{ $class.controllerValue }}" in template
    assert set(CHART_OBJECTS) == {"ingress-nginx"}


def test_the_applied_object_is_what_the_program_sent_without_what_the_server_adds():
    inputs = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu", "labels": {"a": "b"}, "uid": "1", "resourceVersion": "2"},
        "spec": {"limits": {"cpu": "8"}},
        "status": {"nodes": 1},
    }
    assert applied_object(inputs) == {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu", "labels": {"a": "b"}},
        "spec": {"limits": {"cpu": "8"}},
    }


def test_an_open_schema_is_told_from_a_real_one():
    open_crd = {
        "spec": {
            "versions": [
                {"name": "v1", "schema": {"openAPIV3Schema": {"x-kubernetes-preserve-unknown-fields": True}}}
            ]
        }
    }
    assert _schema_kind(open_crd, "v1") == "open"
    assert _schema_kind(REAL_EXTERNAL_SECRET, "v1") == "real"


def test_generated_crds_compare_without_the_controller_gen_release():
    a = json.loads(json.dumps(REAL_EXTERNAL_SECRET))
    a["metadata"]["annotations"] = {"controller-gen.kubebuilder.io/version": "v0.19.0"}
    b = json.loads(json.dumps(REAL_EXTERNAL_SECRET))
    b["metadata"]["annotations"] = {"controller-gen.kubebuilder.io/version": "v0.20.1"}
    assert _comparable(a) == _comparable(b)
    b["spec"]["scope"] = "Cluster"
    assert _comparable(a) != _comparable(b)
