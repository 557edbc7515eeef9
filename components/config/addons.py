"""Which Helm add-ons a stack installs: the registry's ``AddonChoices``, made from the settings.

The platform installs by them and the capacity model counts the pods they keep. ``s`` is
``PlatformSettings``, or the valid sections of one holding at least cluster, compute, nodeGroups,
observability and ingress.
"""

from __future__ import annotations

from typing import Any

from ..catalog.registry import AddonChoices
from ..compute.provisioner import provisioner_named
from ..dra import DRA
from .compute import gpu_allocation


def addon_choices(s: Any) -> AddonChoices:
    """The settings and the provisioner's answers (EKS Auto Mode runs the ALB controller and the
    device plugin itself) that decide the add-ons and their pods."""
    provisioner = provisioner_named(s.compute.provisioner)
    observability = s.observability
    dra = gpu_allocation(s) == DRA
    return AddonChoices(
        ingress_controller=s.ingress.controller,
        observability=observability.enabled,
        alertmanager=observability.alerting.delivery is not None,
        grafana=observability.grafana,
        alb_controller=provisioner.runs_alb_controller,
        device_plugin=provisioner.installs_device_plugin and not dra,
        gpus=bool(s.nodeGroups.gpu or s.compute.pools),
        dra_driver=provisioner.installs_dra_driver and dra,
    )
