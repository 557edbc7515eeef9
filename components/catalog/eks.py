"""The EKS managed add-ons the platform may install, with the pods each runs.

The program does not configure these: their pods carry the requests of the upstream defaults
(vpc-cni, aws-ebs-csi-driver, aws-efs-csi-driver, eks-pod-identity-agent and metrics-server charts;
the EKS coredns and kube-proxy manifests; the EKS community metrics-server add-on runs 2 replicas).
Their DaemonSets tolerate every taint; their controllers run on untainted nodes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EksAddOnPod:
    name: str
    cpu_m: int  # requests of one pod
    memory_mib: int
    replicas: int | None  # None: a DaemonSet, one pod on every node


@dataclass(frozen=True)
class EksAddOn:
    name: str
    pods: tuple[EksAddOnPod, ...]


EKS_ADD_ONS: tuple[EksAddOn, ...] = (
    EksAddOn("vpc-cni", (EksAddOnPod("aws-node", 25, 0, None),)),
    EksAddOn("kube-proxy", (EksAddOnPod("kube-proxy", 100, 0, None),)),
    EksAddOn("coredns", (EksAddOnPod("coredns", 100, 70, 2),)),
    EksAddOn(
        "aws-ebs-csi-driver",
        (EksAddOnPod("ebs-csi-controller", 10, 40, 2), EksAddOnPod("ebs-csi-node", 10, 40, None)),
    ),
    EksAddOn("eks-pod-identity-agent", (EksAddOnPod("eks-pod-identity-agent", 0, 0, None),)),
    EksAddOn("metrics-server", (EksAddOnPod("metrics-server", 100, 200, 2),)),
    EksAddOn(
        "aws-efs-csi-driver",
        (EksAddOnPod("efs-csi-controller", 0, 0, 2), EksAddOnPod("efs-csi-node", 0, 0, None)),
    ),
)
