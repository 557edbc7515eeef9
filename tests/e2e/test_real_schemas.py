"""The real CRD schemas bite. On a local API server, the custom resources of every stack's offline plan are
server-side dry-run with strict field validation against the CRDs generated from the upstream API
modules (``tools/e2e/crds.py``): all accepted. Then custom resources broken on purpose, each a copy of
one the program writes with one mistake, are refused by those schemas, where the open schemas the
stand-ins used before accepted every one of them.

Kinds with no public Go API (EKS Auto Mode's NodeClass and IngressClassParams) have no CRD here: the
project's written schemas (``tests/schemas``, ``make test``) judge them, and the report counts them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from aiplatform.catalog.registry import ADD_ONS
from aiplatform.validation import DEFAULT_KUBERNETES_VERSION
from tests.stacks import EXAMPLE_STACKS, STACKS, stack_path
from tools.e2e.charts import crd_manifest
from tools.e2e.cluster import LocalCluster
from tools.e2e.crds import NOT_GENERATED, CrdSet
from tools.e2e.harness import OUT, offline_plan
from tools.e2e.kubeapi import KubeApi, wait_for
from tools.e2e.strict_dry_run import CustomResources, Verdict
from tools.e2e.toolchain import control_plane, kwok_stage_dir


def _crds(real: CrdSet | None) -> list[dict]:
    """Every CRD the stand-in charts install: the real ones, or (None) the open schemas of before."""
    return [crd_manifest(crd, real.manifests if real else None) for addon in ADD_ONS for crd in addon.crds]


def _install(api: KubeApi, crds: list[dict]) -> None:
    for crd in crds:
        api.create("CustomResourceDefinition", crd)

    def established() -> bool:
        for crd in crds:
            served = api.get("CustomResourceDefinition", crd["metadata"]["name"]) or {}
            conditions = {c["type"]: c["status"] for c in (served.get("status") or {}).get("conditions", [])}
            if conditions.get("Established") != "True":
                return False
        return True

    wait_for(established, timeout=180, what="the CRDs established")


def _custom_objects(stack: str, out: Path) -> list[dict]:
    """The custom resources of the stack's offline plan (``manifests.yaml``), as the program writes them."""
    done = offline_plan(stack_path(stack), stack, out)
    assert done.returncode == 0, done.stderr[-2000:]
    documents = [d for d in yaml.safe_load_all((out / "manifests.yaml").read_text()) if d]
    builtin = ("v1", "apps/", "batch/", "policy/", "networking.k8s.io/", "autoscaling/", "storage.k8s.io/")
    builtin += ("rbac.authorization.k8s.io/", "scheduling.k8s.io/", "resource.k8s.io/")
    return [d for d in documents if not d["apiVersion"].startswith(builtin) and "." in d["apiVersion"]]


def _one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert found, f"no {kind} {name or ''} among the program's custom resources"
    return copy.deepcopy(found[0])


@dataclass(frozen=True)
class Broken:
    what: str
    stack: str  # whose custom resource it is a copy of
    kind: str
    name: str | None
    breaks: Callable[[dict], None]
    refusal: str  # a fragment of the API server's message


def _requirement_in_without_values(pool: dict) -> None:
    requirements = pool["spec"]["template"]["spec"]["requirements"]
    requirements.append({"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": []})


BROKEN = (
    Broken(
        "an unknown field",
        "dev",
        "ExternalSecret",
        None,
        lambda o: o["spec"].update(refreshIntervall=o["spec"]["refreshInterval"]),
        ".spec.refreshIntervall: field not declared in schema",
    ),
    Broken(
        "a bad enum value",
        "dev",
        "ExternalSecret",
        None,
        lambda o: o["spec"]["target"].update(creationPolicy="Always"),
        "Unsupported value",
    ),
    Broken(
        "an AWS service that does not exist",
        "dev",
        "ClusterSecretStore",
        None,
        lambda o: o["spec"]["provider"]["aws"].update(service="SecretManager"),
        "Unsupported value",
    ),
    Broken(
        "a bad duration in an alert",
        "dev",
        "PrometheusRule",
        None,
        lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": "10 minutes"}),
        "should match",
    ),
    Broken(
        "an unknown field in a scrape endpoint",
        "dev",
        "PodMonitor",
        None,
        lambda o: o["spec"]["podMetricsEndpoints"][0].update(portt="metrics"),
        ".spec.podMetricsEndpoints[0].portt: field not declared in schema",
    ),
    Broken(
        "a bad duration in a NodePool",
        "prod-karpenter",
        "NodePool",
        "gpu-inference",
        lambda o: o["spec"]["disruption"].update(consolidateAfter="30 minutes"),
        "consolidateAfter",
    ),
    Broken(
        "a NodePool requirement In with no values",
        "prod-karpenter",
        "NodePool",
        "gpu-inference",
        _requirement_in_without_values,
        "requirements with operator 'In' must have a value defined",
    ),
    Broken(
        "a karpenter.sh/ label on a NodePool",
        "prod-karpenter",
        "NodePool",
        "gpu-inference",
        lambda o: o["spec"]["template"]["metadata"]["labels"].update({"karpenter.sh/team": "ml"}),
        'label domain "karpenter.sh" is restricted',
    ),
    Broken(
        "a bad taint effect",
        "prod-karpenter",
        "NodePool",
        "gpu-inference",
        lambda o: o["spec"]["template"]["spec"]["taints"][0].update(effect="NoScheduleAlways"),
        "Unsupported value",
    ),
    Broken(
        "an EC2NodeClass without amiSelectorTerms",
        "prod-karpenter",
        "EC2NodeClass",
        "gpu",
        lambda o: o["spec"].pop("amiSelectorTerms"),
        "amiSelectorTerms",
    ),
)


@dataclass
class Judged:
    program: dict[str, list[Verdict]]  # stack -> its custom resources' verdicts under the real schemas
    unserved: dict[str, list[str]]  # stack -> its custom resources of kinds with no CRD here
    open_schemas: dict[str, Verdict]  # broken object -> verdict of the stand-ins' former open schemas
    real_schemas: dict[str, Verdict]  # broken object -> verdict of the real schemas


@pytest.fixture(scope="module")
def judged(binaries, crds, report, tmp_path_factory) -> Iterator[Judged]:
    run_dir = OUT / "runs" / f"real-schemas-{os.getpid()}"
    minor = DEFAULT_KUBERNETES_VERSION
    plans = tmp_path_factory.mktemp("plans")
    stacks = (*STACKS, *EXAMPLE_STACKS)
    objects = {stack: _custom_objects(stack, plans / stack) for stack in stacks}
    broken = {}
    for b in BROKEN:
        obj = _one(objects[b.stack], b.kind, b.name)
        b.breaks(obj)
        broken[b.what] = obj
    namespaces = {o["metadata"].get("namespace") for objs in objects.values() for o in objs} - {
        None,
        "default",
    }

    @contextlib.contextmanager
    def cluster_with(crd_set: CrdSet | None, name: str) -> Iterator[CustomResources]:
        """A fresh API server with the stand-ins' CRDs (real, or the open ones of before) and the
        namespaces the objects live in. (Two servers: deleting CRDs to swap them can outlast a test.)"""
        binaries_of = {**binaries, **control_plane(binaries, minor)}
        with LocalCluster(run_dir / name, binaries_of, kwok_stage_dir()) as cluster:
            for namespace in sorted(namespaces):
                cluster.api.create("Namespace", {"metadata": {"name": namespace}})
            _install(cluster.api, _crds(crd_set))
            yield CustomResources(cluster.api)

    with cluster_with(None, "open") as served:  # the stand-ins before
        open_schemas = {what: served.dry_run(obj) for what, obj in broken.items()}
    with cluster_with(crds, "real") as served:
        program = {s: [served.dry_run(o) for o in objs if served.crd_of(o)] for s, objs in objects.items()}
        unserved = {
            s: [
                f"{o['apiVersion']} {o['kind']} {o['metadata']['name']}" for o in objs if not served.crd_of(o)
            ]
            for s, objs in objects.items()
        }
        real_schemas = {what: served.dry_run(obj) for what, obj in broken.items()}
    result = Judged(program, unserved, open_schemas, real_schemas)
    report.set(
        "real_schemas",
        {
            "program": {s: [v.as_dict() for v in vs] for s, vs in program.items()},
            "written_schemas_only": unserved,
            "broken": {
                what: {
                    "open_schema": open_schemas[what].as_dict(),
                    "real_schema": real_schemas[what].as_dict(),
                }
                for what in broken
            },
        },
    )
    yield result


@pytest.mark.parametrize("stack", [*STACKS, *EXAMPLE_STACKS])
def test_the_programs_custom_resources_pass_the_real_schemas(judged, stack):
    verdicts = judged.program[stack]
    refused = [f"{v.object}: {v.message}" for v in verdicts if not v.accepted]
    assert verdicts, f"{stack}: no custom resource judged"
    assert all(v.schema == "real" for v in verdicts), [v.object for v in verdicts if v.schema != "real"]
    assert not refused, json.dumps(refused, indent=1)
    # Only Auto Mode's own kinds have no CRD here.
    assert {u.split()[0] for u in judged.unserved[stack]} <= {"eks.amazonaws.com/v1"}, judged.unserved[stack]


@pytest.mark.parametrize("broken", BROKEN, ids=lambda b: b.what)
def test_a_broken_custom_resource_is_refused_by_the_real_schema(judged, broken):
    before = judged.open_schemas[broken.what]
    assert before.accepted and before.schema == "open", before  # what the stand-ins let through
    verdict = judged.real_schemas[broken.what]
    assert verdict.schema == "real"
    assert not verdict.accepted, f"{verdict.object} accepted with {broken.what}"
    assert broken.refusal in verdict.message, verdict.message


def test_every_crd_the_stand_ins_install_is_real_but_those_not_generated(crds):
    installed = {f"{crd.plural}.{crd.group}" for addon in ADD_ONS for crd in addon.crds}
    assert installed - set(crds.manifests) == NOT_GENERATED


def test_the_generated_crds_equal_the_copies_the_modules_ship(crds):
    """The recipes are upstream's: where a module ships its generated CRDs (external-secrets, both Karpenter
    modules), controller-gen and the hack/validation patches here produce exactly them (but the
    controller-gen release annotation)."""
    shipped = {g.source: g.matches_shipped for g in crds.sources}
    assert shipped["karpenter"] == {
        "karpenter.sh_nodepools.yaml": True,
        "karpenter.sh_nodeclaims.yaml": True,
        "karpenter.k8s.aws_ec2nodeclasses.yaml": True,
    }
    assert shipped["external-secrets"] and all(shipped["external-secrets"].values()), shipped[
        "external-secrets"
    ]
