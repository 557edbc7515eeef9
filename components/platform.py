"""``AiPlatform``: the whole platform composed from validated settings.

This is the only place that maps settings to component arguments; every component stays usable on
its own with typed args.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from components.config import PlatformSettings
from components.network import ExistingNetwork, Network, NetworkArgs

SecretLookup = Callable[[str], pulumi.Output[str] | None]


class AiPlatform(pulumi.ComponentResource):
    """Network, cluster, GPU support, secrets, ingress, observability, storage and workloads."""

    def __init__(
        self,
        name: str,
        settings: PlatformSettings,
        secret_values: SecretLookup = lambda key: None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("aiplatform:index:AiPlatform", name, None, opts)
        self.settings = settings
        self._name = name
        self._secret_values = secret_values
        self._tags = {"platform": "aiplatform", "environment": settings.environment, **settings.tags}

        self.network = self._network()
        self.register_outputs({})

    @property
    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _network(self) -> Network | ExistingNetwork:
        net, cluster = self.settings.network, self.settings.cluster
        if net.existing:
            return ExistingNetwork(
                vpc_id=net.existing.vpcId,
                private_subnet_ids=tuple(net.existing.privateSubnetIds),
                public_subnet_ids=tuple(net.existing.publicSubnetIds),
            )
        return Network(
            f"{self._name}-network",
            NetworkArgs(
                cluster_name=cluster.name,
                vpc_cidr=net.vpcCidr,
                az_count=net.azCount,
                nat_gateways=net.natGateways,
                flow_logs=net.flowLogs,
                flow_logs_retention_days=net.flowLogRetentionDays,
                tags=self._tags,
            ),
            opts=self._child,
        )

    def exports(self) -> dict[str, Any]:
        """Stack outputs: identifiers operators need; the kubeconfig only as a secret."""
        return {"vpcId": self.network.vpc_id}
