"""What a workload needs to expose itself through whichever ingress controller is active."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class IngressRoute:
    """Everything an Ingress object needs from the controller for one host and path.

    ``tls_secret_name`` is set when TLS terminates in the cluster (ingress-nginx); with the ALB
    controller TLS terminates at the load balancer with an ACM certificate named in ``annotations``.
    """

    class_name: str  # the IngressClass that serves the route
    host: str  # the public host name
    path: str = "/"  # the path prefix routed to the service
    tls: bool = True  # serve the route over HTTPS
    annotations: Mapping[str, str] = field(default_factory=dict)
    tls_secret_name: str | None = None
