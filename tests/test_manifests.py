"""Every Kubernetes object the stacks would apply is valid for the stack's Kubernetes version."""

from __future__ import annotations

import kubernetes_validate
import pytest

from aiplatform.plan.model import manifests
from tests import crd_schemas
from tests.program import planned
from tests.stacks import EXAMPLE_STACKS, STACKS, stack_config

# Custom resources whose CRDs ship no schema with kubernetes-validate; checked by their own tests.
NO_PUBLISHED_SCHEMA = {"ExternalSecret", "ClusterSecretStore", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("stack", [*STACKS, *EXAMPLE_STACKS])
def test_manifests_validate_strictly_against_the_kubernetes_schema(stack):
    """Kubernetes' own kinds against kubernetes-validate; NodePools, node classes and Auto Mode's
    IngressClassParams against the schemas in tests/schemas."""
    version = stack_config(stack)["aiplatform:cluster"]["kubernetesVersion"] + ".0"
    documents = manifests(planned(stack).registrations)
    problems, checked, custom = [], 0, []
    for document in documents:
        where = f"{document['kind']}/{document['metadata']['name']}"
        if document["kind"] in NO_PUBLISHED_SCHEMA:
            continue
        if crd_schemas.known(document):
            problems += [f"{where}: {p}" for p in crd_schemas.problems(document)]
            custom.append(where)
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {exc.message}")
    assert problems == []
    assert checked >= 45
    assert sorted(custom) == EXPECTED_CUSTOM[stack]


EXPECTED_CUSTOM = {
    "dev": [],
    "dev-dra": [],
    "prod": [],
    "dev-nginx": [],
    "prod-karpenter": [
        "EC2NodeClass/gpu",
        "EC2NodeClass/gpu-reserved",
        "NodePool/gpu-inference",
        "NodePool/gpu-reserved",
        "NodePool/gpu-training-spot",
    ],
    "dev-auto-mode": [
        "IngressClassParams/alb",
        "NodeClass/gpu",
        "NodeClass/system",
        "NodePool/gpu-inference",
        "NodePool/gpu-training",
        "NodePool/system",
    ],
}


@pytest.mark.parametrize("stack", STACKS)
def test_the_reference_ai_workloads_are_in_the_manifests(stack):
    documents = manifests(planned(stack).registrations)
    by_kind: dict[str, dict[str, dict]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
    assert {"llama-inference", "text-embedder", "llm-orchestrator"} <= set(by_kind["Deployment"])
    job = by_kind["Job"]["hyperparameter-sweep"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"], job["backoffLimit"]) == (
        "Indexed",
        5,
        2,
        4,
    )
    trainer = job["template"]["spec"]["containers"][0]
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {
            "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
        },
    } in trainer["env"]
    cron = by_kind["CronJob"]["nightly-batch-predict"]["spec"]
    assert (cron["schedule"], cron["concurrencyPolicy"]) == ("0 2 * * *", "Forbid")
    assert cron["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    hpa = next(
        h["spec"]
        for h in by_kind["HorizontalPodAutoscaler"].values()
        if h["spec"]["scaleTargetRef"]["name"] == "llama-inference"
    )
    # dev's GPU group tops out at 3 one-GPU nodes; prod's at 10.
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, {"dev": 3, "prod": 10}[stack])
    assert "ai-service-config" in by_kind["ConfigMap"]
    external = by_kind["ExternalSecret"]["openai-secret"]["spec"]
    assert {d["secretKey"] for d in external["data"]} == {"api-key", "huggingface-token"}
    # No static AWS keys and no inline secret values in any manifest.
    text = repr(documents)
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert not [d for d in documents if d["kind"] == "Secret"]


def _pod_specs(node):
    """Every pod spec inside a manifest (Deployments, Jobs, CronJobs' job templates...)."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
        for value in node.values():
            yield from _pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pod_specs(value)


def _repeated(keys) -> list:
    keys = list(keys)
    return sorted({k for k in keys if keys.count(k) > 1})


@pytest.mark.parametrize("stack", STACKS)
def test_no_list_the_api_server_merges_by_key_repeats_a_key(stack):
    """Server-side apply rejects e.g. ``env: duplicate entries for key [name="MODEL_DIR"]``."""
    problems, pods = [], 0
    for document in manifests(planned(stack).registrations):
        for pod in _pod_specs(document):
            pods += 1
            where = f"{document['kind']}/{document['metadata']['name']}"
            containers = [*pod.get("initContainers", []), *pod["containers"]]
            keyed = [("container name", [c["name"] for c in containers])]
            keyed.append(("volume name", [v["name"] for v in pod.get("volumes", [])]))
            for c in containers:
                keyed += [
                    (f"{c['name']} env", [e["name"] for e in c.get("env", [])]),
                    (f"{c['name']} port", [(p["containerPort"], p["protocol"]) for p in c.get("ports", [])]),
                    (f"{c['name']} mount path", [m["mountPath"] for m in c.get("volumeMounts", [])]),
                ]
            problems += [f"{where}: {what} {_repeated(keys)}" for what, keys in keyed if _repeated(keys)]
    assert problems == []
    assert pods == 5


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_runs_as_a_high_user_and_group(stack):
    """Ids above 10000 cannot be a host user's; no container asks for other ids."""
    ids = []
    for document in manifests(planned(stack).registrations):
        for pod in _pod_specs(document):
            sc = pod["securityContext"]
            ids.append((sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]))
            for c in [*pod.get("initContainers", []), *pod["containers"]]:
                assert not {"runAsUser", "runAsGroup"} & set(c["securityContext"]), c["name"]
    assert ids == [(10001, 10001, 10001)] * 5


@pytest.mark.parametrize(
    ("stack", "pinned", "policy"), [("dev", False, "Always"), ("prod", True, "IfNotPresent")]
)
def test_prod_runs_every_image_by_digest_dev_by_tag(stack, pinned, policy):
    containers = [
        c
        for document in manifests(planned(stack).registrations)
        for pod in _pod_specs(document)
        for c in [*pod.get("initContainers", []), *pod["containers"]]
    ]
    assert len(containers) == 8
    assert {("@sha256:" in c["image"], c["imagePullPolicy"]) for c in containers} == {(pinned, policy)}


DEV_TAGS = "CKV_K8S_43=dev runs images by tag; prod requires digests (a config rule)"
PROD_DIGESTS = "CKV_K8S_15=images are pinned by digest: IfNotPresent runs exactly that image, a pull at every start adds nothing"
OPENAI_ENV = (
    "CKV_K8S_35=OPENAI_API_KEY through secret_env, for an application that reads it only from the environment "
    "(secret_files mounts the others as files)"
)


@pytest.mark.parametrize(("stack", "every"), [("dev", DEV_TAGS), ("prod", PROD_DIGESTS)])
def test_each_accepted_scanner_finding_is_explained_on_its_object(stack, every):
    skips = {
        f"{d['kind']}/{d['metadata']['name']}": sorted(
            v for k, v in d["metadata"].get("annotations", {}).items() if k.startswith("checkov.io/skip")
        )
        for d in manifests(planned(stack).registrations)
        if any(True for _ in _pod_specs(d))
    }
    assert skips == {
        "Deployment/llama-inference": [every],
        "Deployment/text-embedder": [every],
        "Deployment/llm-orchestrator": sorted([every, OPENAI_ENV]),
        "Job/hyperparameter-sweep": [every],
        "CronJob/nightly-batch-predict": [every],
    }
