"""Karpenter, run for real: its core with the kwok cloud provider, serving the platform's EC2NodeClasses
(the harness's own ``main``, ``go/karpenter-kwok``), against the local API server.

The instance types Karpenter chooses from are the platform's own: every type of the instance table
(``aiplatform.compute.instance_types``), with the allocatable capacity of the capacity model
(``aiplatform.compute.capacity.allocatable``), offered on-demand and spot in each zone of the subnets
Karpenter discovers, at the price table's on-demand price and its spot discount
(``aiplatform/plan/pricing.json``). No reserved offering: the simulated cloud holds no capacity
reservation, so a pool that prefers reserved capacity falls back as it would in AWS.

Karpenter binds its metrics and health ports on every interface and has no flag for the address: it
runs in a network namespace of its own whose only interface is loopback (``netns``), its one way out
being the API server's address.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiplatform.compute.capacity import allocatable
from aiplatform.compute.instance_types import INSTANCE_TYPES, InstanceType
from aiplatform.plan.cost import load_pricing
from tools.e2e.cloud.node_classes import selected, subnets
from tools.e2e.cloud.store import CloudStore
from tools.e2e.operators.netns import loopback_only
from tools.e2e.operators.supervisor import Launch, base_env

NODE_POOLS = ("karpenter.sh/v1", "nodepools")
NODE_CLAIMS = ("karpenter.sh/v1", "nodeclaims")
EC2_NODE_CLASSES = ("karpenter.k8s.aws/v1", "ec2nodeclasses")
POOL_LABEL = "karpenter.sh/nodepool"
# The kwok provider subtracts this from each type's resources as the kubelet's reservation.
KWOK_RESERVED_CPU_M, KWOK_RESERVED_MEMORY_MIB = 100, 10
CAPACITY_TYPES = ("on-demand", "spot")


def _requirement(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": [value]}


def instance_type_entry(
    instance: InstanceType, zones: Iterable[str], on_demand: float, spot_discount: float
) -> dict[str, Any]:
    """One type as the kwok provider reads it: the capacity model's allocatable (plus what kwok
    subtracts), an offering per zone and capacity type, the AWS provider's family and GPU labels."""
    shape = allocatable(instance)
    resources = {
        "cpu": f"{shape.allocatable.cpu_m + KWOK_RESERVED_CPU_M}m",
        "memory": f"{shape.allocatable.memory_mib + KWOK_RESERVED_MEMORY_MIB}Mi",
        "pods": str(shape.pods),
    }
    if instance.gpus:
        resources["nvidia.com/gpu"] = str(instance.gpus)
    prices = {
        "on-demand": on_demand,
        "spot": float(Decimal(str(on_demand)) * (1 - Decimal(str(spot_discount)))),
    }
    labels = [
        _requirement("karpenter.k8s.aws/instance-family", instance.family),
        _requirement("karpenter.k8s.aws/instance-gpu-count", str(instance.gpus)),
    ]
    return {
        "name": instance.name,
        "architecture": "arm64" if instance.arch == "arm64" else "amd64",
        "operatingSystems": ["linux"],
        "resources": resources,
        "offerings": [
            {
                "Price": prices[capacity],
                "Available": True,
                "Requirements": [
                    _requirement("karpenter.sh/capacity-type", capacity),
                    _requirement("topology.kubernetes.io/zone", zone),
                    *labels,
                ],
            }
            for zone in sorted(zones)
            for capacity in CAPACITY_TYPES
        ],
    }


def instance_types(zones: Iterable[str], pricing: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every type of the instance table that the price table prices, for the kwok provider."""
    pricing = pricing or load_pricing()
    prices = pricing["ec2_on_demand_hour"]
    zones = sorted(set(zones))
    return [
        instance_type_entry(instance, zones, prices[name], pricing["spot_discount"])
        for name, instance in sorted(INSTANCE_TYPES.items())
        if name in prices
    ]


def discovered_zones(store: CloudStore) -> list[str]:
    """The zones of the subnets Karpenter discovers (``karpenter.sh/discovery``), else of every subnet."""
    everything = subnets(store)
    tagged = selected([{"tags": {"karpenter.sh/discovery": "*"}}], everything)
    return sorted({s.zone for s in (tagged or everything) if s.zone})


def launch(
    binary: str, kubeconfig: Path, instance_types_file: Path, bridge_socket: Path, api_port: int
) -> Launch:
    """Karpenter in its loopback-only namespace, leader election off (one replica, outside the cluster)."""
    env = base_env(
        {
            "KUBECONFIG": str(kubeconfig),
            "PYTHONPATH": str(Path(__file__).resolve().parents[3]),  # the namespace's entry point
            "DISABLE_LEADER_ELECTION": "true",
            "INSTANCE_TYPES_FILE_PATH": str(instance_types_file),
            # Reachable from this process tree only: the namespace has no interface but loopback.
            "METRICS_PORT": "8080",
            "HEALTH_PROBE_PORT": "8081",
            "LOG_LEVEL": "info",
        }
    )
    return Launch(loopback_only([binary], bridge_socket, api_port), env)


def write_instance_types(path: Path, store: CloudStore) -> list[str]:
    """The instance types file for the zones the simulated cloud's subnets cover; returns the zones."""
    zones = discovered_zones(store) or ["us-east-1a"]
    path.write_text(json.dumps(instance_types(zones), indent=1))
    return zones
