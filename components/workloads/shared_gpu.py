"""SharedGpu: one ResourceClaim whose GPUs the pods of several small workloads share (GPUs by DRA).

Kubernetes allocates a claim once; every pod that references it runs on the node of its devices and
uses them together, by the sharing strategy the NVIDIA DRA driver applies (time-slicing or MPS, its
``GpuConfig``). A dev stack runs two light model servers on one GPU this way. A claim is namespaced:
only pods of its namespace can use it.

Example::

    light = SharedGpu("light", SharedGpuArgs(
        provider=cluster.provider, namespace="ml-serving", placement=nodes.placements["gpu-inference"],
    ))
    InferenceService("embedder", InferenceServiceArgs(..., namespace="ml-serving",
        placement=nodes.placements["gpu-inference"], shared_gpu=light.reference, depends_on=[light.claim]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from .. import dra, fit
from ..dra import GpuSelector, SharedGpuClaim, SharingStrategy
from ..errors import Problem, require, under
from ..scheduling import Placement
from ..validation import is_dns1123_label
from ._common import PART_OF

meta = k8s.meta.v1


@dataclass(frozen=True, kw_only=True)
class SharedGpuArgs:
    provider: k8s.Provider  # the cluster's Kubernetes provider
    namespace: str  # the claim's namespace: the pods that share it run there
    placement: Placement  # the GPU node group or pool its GPUs come from (its GPUs claimed through DRA)
    count: int = 1  # the GPUs the claim holds, which its pods share
    selector: GpuSelector | None = None  # which GPUs it accepts (None: any of the placement's)
    sharing: SharingStrategy = "TimeSlicing"  # how the pods share them: the driver's time-slicing or MPS
    labels: Mapping[str, str] = field(default_factory=dict)  # extra labels on the claim
    depends_on: Sequence[pulumi.Resource] = ()  # its namespace

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not is_dns1123_label(self.namespace):
            problems.append(("namespace", f"{self.namespace!r} is not a valid namespace name"))
        if self.placement.device_class is None:
            problems.append(
                (
                    "placement",
                    "needs a placement whose GPUs pods claim through DRA (placement.device_class): the "
                    "device plugin's nvidia.com/gpu cannot be shared between pods",
                )
            )
        if not 1 <= self.count <= 16:
            problems.append(("count", f"{self.count} must be between 1 and 16"))
        if self.sharing not in dra.SHARING_STRATEGIES:
            problems.append(
                ("sharing", f"{self.sharing!r} must be one of {', '.join(dra.SHARING_STRATEGIES)}")
            )
        if self.selector is not None:
            problems += under("selector", self.selector.problems())
        node = self.placement.fit
        if problems or node is None:
            return problems
        if reason := fit.gpu_count_reason(self.count, node):
            problems.append(("count", reason))
        elif self.selector is not None and (reason := fit.gpu_selector_reason(self.selector, node)):
            problems.append(("selector", reason))
        elif self.selector is not None and (
            reason := fit.selected_gpu_count_reason(self.count, self.selector, node)
        ):
            problems.append(("count", reason))
        return problems


class SharedGpu(pulumi.ComponentResource):
    """A ResourceClaim of ``count`` GPUs that pods of several workloads share (``reference``)."""

    claim: k8s.resource.v1.ResourceClaim  # the claim (auto-named after the component)
    reference: SharedGpuClaim  # what a workload takes as ``shared_gpu``

    def __init__(self, name: str, args: SharedGpuArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"SharedGpu {name!r}", args.problems())
        super().__init__("aiplatform:workloads:SharedGpu", name, None, opts)
        assert args.placement.device_class is not None  # problems() says so first
        labels = {
            **dict(args.labels),
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/component": "shared-gpu",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pulumi",
        }
        # Auto-named: a claim's spec cannot change, so a new description is a new claim the pods move to.
        self.claim = k8s.resource.v1.ResourceClaim(
            f"{name}-claim",
            metadata=meta.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            spec=dra.claim_spec(
                args.count,
                device_class=args.placement.device_class,
                selector=args.selector,
                sharing=args.sharing,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.depends_on)
            ),
        )
        self.reference = SharedGpuClaim(
            claim_name=self.claim.metadata.name,
            namespace=args.namespace,
            devices=args.count,
            source=args.placement.fit.name if args.placement.fit else None,
        )
        self.register_outputs({"claim_name": self.claim.metadata.name})
