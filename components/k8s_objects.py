"""How the platform's Kubernetes objects behave on change under the real engine.

pulumi-kubernetes replaces a ConfigMap whose data changes, by default. An auto-named ConfigMap is then
created anew before the old one goes: the pod template sees a new name, the pods roll, and old pods keep
their old config until they are gone. A ConfigMap with a fixed name cannot be created beside itself, so it
is deleted first, and the engine then also deletes and re-creates everything that reads it: a config
change would take a Deployment down at once. So every provider the platform makes treats ConfigMaps as
mutable (``enableConfigMapMutable``): a fixed-name ConfigMap is updated in place and its readers roll
through the config hash on their pod template, while auto-named ConfigMaps keep the replacement through
``replaceOnChanges``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

# What makes an auto-named ConfigMap be replaced (create-before-delete) rather than updated.
CONFIG_MAP_CONTENT = ["data", "binaryData"]
# The annotation ("true") with which the provider returns as soon as it created or updated the object,
# without its readiness await.
SKIP_AWAIT = "pulumi.com/skipAwait"


def provider(
    name: str, kubeconfig: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    """A Kubernetes provider as the platform configures every one: server-side apply, mutable ConfigMaps."""
    return k8s.Provider(
        name,
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        enable_config_map_mutable=True,
        opts=opts,
    )


def config_map(
    resource_name: str,
    namespace: pulumi.Input[str],
    data: Mapping[str, str],
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    name: str | None = None,
) -> k8s.core.v1.ConfigMap:
    """A ConfigMap: auto-named and replaced on change, or with a fixed ``name`` and updated in place."""
    replace = None if name else pulumi.ResourceOptions(replace_on_changes=CONFIG_MAP_CONTENT)
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(namespace=namespace, labels=dict(labels), name=name),
        data=dict(data),
        opts=pulumi.ResourceOptions.merge(opts, replace),
    )
