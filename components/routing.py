"""What a workload needs to expose itself through whichever ingress controller is active."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi


@dataclass(frozen=True)
class IngressRoute:
    """Everything an Ingress object needs from the controller for one host and path.

    ``tls_secret_name`` is set when TLS terminates in the cluster (ingress-nginx); with the ALB
    controller TLS terminates at the load balancer with an ACM certificate named in ``annotations``.

    ``health_check_annotation`` is the annotation the controller reads its target health-check path
    from (the ALB's ``healthcheck-path``); a workload sets it to its readiness path unless the route
    already names a path (``route(..., health_check_path=...)``). None: the controller takes no such
    path. ingress-nginx checks no path of its own: it sends traffic to the pods the Service lists as
    ready, i.e. those passing their readiness probe.
    """

    class_name: str  # the IngressClass that serves the route
    host: pulumi.Input[str]  # the public host name (checked by the controller's ``route``)
    path: str = "/"  # the path prefix routed to the service
    tls: bool = True  # serve the route over HTTPS
    # the controller's annotations for the route (the ALB's certificate may be an ``Output``)
    annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tls_secret_name: pulumi.Input[str] | None = None
    health_check_annotation: str | None = None

    def annotations_checking(self, health_check_path: str) -> dict[str, pulumi.Input[str]]:
        """The Ingress annotations, the controller's health check on ``health_check_path`` unless the
        route names its own path."""
        annotations = dict(self.annotations)
        if self.health_check_annotation:
            annotations.setdefault(self.health_check_annotation, health_check_path)
        return annotations
