"""How the platform installs an add-on whose descriptor names an ``install`` function.

The platform fills one ``AddOnInstall`` per such add-on from the settings and calls the function of
its component module (``AddOn.component``) with it; the function returns the component. A new Helm
add-on is then its descriptor and its component, nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from ..catalog.registry import AddOn
from ..iam import WorkloadIdentity


@dataclass(frozen=True)
class AddOnInstall:
    """What an add-on's install function builds its component from."""

    name: str  # the component's name: "<platform>-<chart>"
    provider: k8s.Provider
    chart_version: str  # the ``charts:`` pin, or the descriptor's version
    chart_repository: str  # after ``charts.mirror`` and ``charts.repositories``
    identity: WorkloadIdentity  # how its pods get AWS credentials (IRSA or Pod Identity)
    is_prod: bool
    depends_on: Sequence[pulumi.Resource] = ()  # the system nodes its pods run on
    tags: Mapping[str, str] = field(default_factory=dict)  # for the AWS resources it creates
    opts: pulumi.ResourceOptions | None = None  # the component's: its parent is the platform


Installer = Callable[[AddOnInstall], pulumi.ComponentResource]


def installer(addon: AddOn) -> Installer:
    """The function ``addon``'s descriptor names in its component module."""
    assert addon.install is not None, addon.chart
    return getattr(importlib.import_module(f"..{addon.component}", __package__), addon.install)
