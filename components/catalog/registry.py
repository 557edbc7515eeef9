"""Every Helm add-on the platform installs, each described once.

A descriptor holds what the rest of the program needs to know about a chart: where it comes from and
the version the stacks pin, the ``charts:`` config key that pins it, the ``resources`` maps the chart
reads (``helm.py`` nulls their defaults), the pods it runs and where (the capacity model counts them),
the CRDs it installs and the kinds whose objects must go before its release (the e2e stand-ins and
teardown check), and when the platform installs it. Components read their chart's name, repository
and default version here; the settings' ``charts:`` fields are made from ``ADD_ONS``.

Pure data: nothing here imports a component (they import their descriptor). Where a pod's requests
or replica count are a component's, the descriptor names them in ``AddOn.component``'s module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kubernetes_versions import BY_VERSION, DEFAULT_VERSION

ResourcePath = tuple[str, ...]


@dataclass(frozen=True)
class AddonChoices:
    """What decides which add-ons a stack installs and which of their pods run: made from the settings
    (config's capacity inputs) and the provisioner (EKS Auto Mode runs the ALB controller and the
    device plugin itself); ``gpus``: the stack has GPU node groups or pools."""

    ingress_controller: str = "alb"  # "alb" or "nginx"
    observability: bool = True
    alertmanager: bool = False
    grafana: bool = False
    alb_controller: bool = True
    device_plugin: bool = True
    gpus: bool = False
    dra_driver: bool = False  # GPUs by DRA, with the NVIDIA DRA driver the platform installs


Condition = Callable[[AddonChoices], bool]


def always(choices: AddonChoices) -> bool:
    return True


@dataclass(frozen=True)
class Crd:
    """A CustomResourceDefinition a chart installs."""

    group: str
    kind: str
    plural: str
    versions: tuple[str, ...] = ("v1",)
    namespaced: bool = True


@dataclass(frozen=True)
class DeviceClass:
    """A DRA DeviceClass a chart installs: its name and the CEL selector of the devices it holds."""

    name: str
    selector: str


@dataclass(frozen=True)
class Pod:
    """Identical pods a release runs, as the capacity model counts them.

    ``requests`` names the component's resources maps of its containers (``NAME`` or ``NAME.key``
    for an entry of a mapping of them); ``replicas`` is a count, or names the component's constant or
    argument default (``Args.field``) that sets it.
    """

    name: str
    requests: tuple[str, ...]
    replicas: int | str = 1
    system: bool = False  # pinned to the system group by a node selector
    daemon: bool = False  # one pod on every node it tolerates
    gpu_only: bool = False  # a DaemonSet that selects GPU nodes
    # What a DaemonSet tolerates: the component's constant, or its function of the node groups.
    tolerations: str | None = None
    when: Condition = always


@dataclass(frozen=True)
class AddOn:
    """One Helm chart the platform installs."""

    chart: str
    repository: str  # upstream; ``charts.mirror`` / ``charts.repositories`` move it
    key: str  # its version's key in the ``charts:`` settings
    version: str  # the version the committed stacks pin, and the component's default
    component: str  # the module (under ``aiplatform``) whose requests and replicas the pods name
    # Every ``resources`` map the chart reads for a container the program runs, with the chart's
    # default there at the pinned version (an empty map: no default).
    resources: Mapping[ResourcePath, Mapping[str, Any]]
    pods: tuple[Pod, ...] = ()
    enabled: Condition = always
    # The compute provisioner installs it and lists its pods (the cluster autoscaler, Karpenter).
    provisioner: bool = False
    pinned_when: str | None = None  # its version is optional in ``charts:``, required with this setting
    # Its version may be left out of ``charts:`` (``version`` applies): a new add-on needs no stack edit.
    optional_pin: bool = False
    # The function of ``component`` that installs it from an ``AddOnInstall`` (addons/install.py):
    # the platform then installs it wherever ``enabled`` says, with no code of its own.
    install: str | None = None
    crds: tuple[Crd, ...] = ()
    crds_in_templates: bool = False  # templated CRDs (Helm deletes them on uninstall), else ``crds/``
    owns: tuple[str, ...] = ()  # type tokens of objects that must be deleted before the release
    node_agent_values: str | None = None  # values path of a node agent's placement ("" = top level)
    # values path of the ServiceAccount the chart creates for its controller (its ``create``, ``name``
    # and ``annotations``, where an IRSA role is named), when the program sets it
    service_account_values: str | None = None
    install_minutes: float | None = None  # when known to differ from a typical release's
    network_load_balancers: int = 0  # what its Services of type LoadBalancer provision
    device_classes: tuple[DeviceClass, ...] = ()  # the DRA DeviceClasses its templates install


_ESO = "external-secrets.io"
_MON = "monitoring.coreos.com"
_INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
_PROMETHEUS_COMMUNITY = "https://prometheus-community.github.io/helm-charts"

# The chart defaults were read from each chart's values.yaml at the pinned version (dcgm-exporter
# 4.8.3: at commit 7ad5832, the one its release pull request links; external-secrets: 2.9.0 for the
# pinned 2.10.0).
EXTERNAL_SECRETS = AddOn(
    chart="external-secrets",
    repository="https://charts.external-secrets.io",
    key="externalSecrets",
    version="2.10.0",
    component="addons.secrets",
    resources={
        ("resources",): {},
        ("webhook", "resources"): {},
        ("certController", "resources"): {},
    },
    pods=tuple(
        Pod(f"external-secrets {part}", ("DEFAULT_RESOURCES",))
        for part in ("controller", "webhook", "cert-controller")
    ),
    crds=(
        Crd(_ESO, "ExternalSecret", "externalsecrets"),
        Crd(_ESO, "SecretStore", "secretstores"),
        Crd(_ESO, "ClusterSecretStore", "clustersecretstores", namespaced=False),
        Crd(_ESO, "ClusterExternalSecret", "clusterexternalsecrets", namespaced=False),
        Crd(_ESO, "PushSecret", "pushsecrets", versions=("v1alpha1",)),
        Crd(_ESO, "ClusterPushSecret", "clusterpushsecrets", versions=("v1alpha1",), namespaced=False),
        Crd("generators.external-secrets.io", "GeneratorState", "generatorstates", versions=("v1alpha1",)),
    ),
    service_account_values="serviceAccount",
    crds_in_templates=True,
    owns=(f"kubernetes:{_ESO}/v1:ExternalSecret", f"kubernetes:{_ESO}/v1:ClusterSecretStore"),
)

# It runs with either ingress controller (it provisions ingress-nginx's NLB too); Auto Mode runs its
# own, outside the cluster's nodes.
AWS_LOAD_BALANCER_CONTROLLER = AddOn(
    chart="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    key="awsLoadBalancerController",
    version="3.5.0",
    component="addons.ingress",
    resources={("resources",): {}},
    pods=(
        Pod(
            "aws-load-balancer-controller",
            ("ALB_RESOURCES",),
            replicas="IngressControllerArgs.replica_count",
        ),
    ),
    enabled=lambda choices: choices.alb_controller,
    service_account_values="serviceAccount",
    crds=(
        Crd("elbv2.k8s.aws", "TargetGroupBinding", "targetgroupbindings", versions=("v1beta1",)),
        Crd(
            "elbv2.k8s.aws",
            "IngressClassParams",
            "ingressclassparams",
            versions=("v1beta1",),
            namespaced=False,
        ),
    ),
    owns=(_INGRESS,),
    install_minutes=1.5,
)

INGRESS_NGINX = AddOn(
    chart="ingress-nginx",
    repository="https://kubernetes.github.io/ingress-nginx",
    key="ingressNginx",
    version="4.15.1",
    component="addons.ingress",
    resources={
        ("controller", "resources"): {"requests": {"cpu": "100m", "memory": "90Mi"}},
        ("controller", "admissionWebhooks", "createSecretJob", "resources"): {},
        ("controller", "admissionWebhooks", "patchWebhookJob", "resources"): {},
    },
    pods=(
        Pod(
            "ingress-nginx controller",
            ("NGINX_RESOURCES",),
            replicas="IngressControllerArgs.replica_count",
        ),
    ),
    enabled=lambda choices: choices.ingress_controller == "nginx",
    owns=(_INGRESS,),
    network_load_balancers=1,
)

# Auto Mode's GPU nodes bring their own device plugin.
NVIDIA_DEVICE_PLUGIN = AddOn(
    chart="nvidia-device-plugin",
    repository="https://nvidia.github.io/k8s-device-plugin",
    key="nvidiaDevicePlugin",
    version="0.20.0",
    component="addons.gpu",
    resources={("resources",): {}},
    pods=(
        Pod(
            "nvidia-device-plugin",
            ("DEVICE_PLUGIN_RESOURCES",),
            daemon=True,
            gpu_only=True,
            tolerations="gpu_tolerations",
        ),
    ),
    enabled=lambda choices: choices.gpus and choices.device_plugin,
    node_agent_values="",
)

# The NVIDIA DRA driver (kubernetes-sigs/dra-driver-nvidia-gpu, the chart NVIDIA's nvidia-dra-driver-gpu
# became at 0.4.0), with GPU allocation on and ComputeDomains off: its kubelet plugin DaemonSet on the
# GPU nodes and nothing else (the ComputeDomain controller and the webhook do not run). Its defaults were
# read from values.yaml at 0.4.1: the gpus container's resources are empty; the kubelet plugin's init
# container has no resources value at this version (templates/kubeletplugin.yaml).
NVIDIA_DRA_DRIVER = AddOn(
    chart="dra-driver-nvidia-gpu",
    repository="oci://registry.k8s.io/dra-driver-nvidia/charts",
    key="nvidiaDraDriver",
    version="0.4.1",
    component="addons.gpu",
    resources={("kubeletPlugin", "containers", "gpus", "resources"): {}},
    pods=(
        Pod(
            "dra-driver-nvidia-gpu kubelet plugin",
            ("DRA_DRIVER_RESOURCES",),
            daemon=True,
            gpu_only=True,
            tolerations="gpu_tolerations",
        ),
    ),
    enabled=lambda choices: choices.gpus and choices.dra_driver,
    optional_pin=True,
    node_agent_values="kubeletPlugin",
    # templates/deviceclass-{gpu,mig,vfio-gpu}.yaml at 0.4.1
    device_classes=tuple(
        DeviceClass(
            name,
            f"device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == '{kind}'",
        )
        for name, kind in (
            ("gpu.nvidia.com", "gpu"),
            ("mig.nvidia.com", "mig"),
            ("vfio.gpu.nvidia.com", "vfio"),
        )
    ),
)

# GPU metrics wherever there are GPUs: the GPU health alerts read them.
DCGM_EXPORTER = AddOn(
    chart="dcgm-exporter",
    repository="https://nvidia.github.io/dcgm-exporter/helm-charts",
    key="dcgmExporter",
    version="4.8.3",
    component="addons.gpu",
    resources={
        ("resources",): {
            "limits": {"cpu": "200m", "memory": "512Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
    },
    pods=(
        Pod(
            "dcgm-exporter",
            ("DCGM_EXPORTER_RESOURCES",),
            daemon=True,
            gpu_only=True,
            tolerations="gpu_tolerations",
        ),
    ),
    enabled=lambda choices: choices.gpus,
    node_agent_values="",
)

# Its pin follows the cluster's Kubernetes minor: the version calendar's chart for the default minor
# here, the calendar's chart for the args' minor in the component.
CLUSTER_AUTOSCALER = AddOn(
    chart="cluster-autoscaler",
    repository="https://kubernetes.github.io/autoscaler",
    key="clusterAutoscaler",
    version=BY_VERSION[DEFAULT_VERSION].autoscaler_chart,
    component="compute.autoscaler",
    resources={("resources",): {}},
    pods=(Pod("cluster-autoscaler", ("RESOURCES",), replicas="REPLICAS", system=True),),
    provisioner=True,
    service_account_values="rbac.serviceAccount",
)


def _observability(choices: AddonChoices) -> bool:
    return choices.observability


_STACK = "COMPONENT_RESOURCES"

KUBE_PROMETHEUS_STACK = AddOn(
    chart="kube-prometheus-stack",
    repository=_PROMETHEUS_COMMUNITY,
    key="kubePrometheusStack",
    version="88.5.3",
    component="addons.observability",
    resources={
        ("prometheus", "prometheusSpec", "resources"): {},
        ("alertmanager", "alertmanagerSpec", "resources"): {},
        ("prometheusOperator", "resources"): {},
        # The config-reloader sidecars of the Prometheus and Alertmanager pods.
        ("prometheusOperator", "prometheusConfigReloader", "resources"): {},
        ("prometheusOperator", "admissionWebhooks", "patch", "resources"): {},
        ("kube-state-metrics", "resources"): {},
        ("prometheus-node-exporter", "resources"): {},
        ("grafana", "resources"): {},
        # The dashboard and datasource sidecars share these.
        ("grafana", "sidecar", "resources"): {},
    },
    pods=(
        Pod("prometheus-operator", (f"{_STACK}.operator",), system=True),
        Pod("prometheus", ("PROMETHEUS_RESOURCES", f"{_STACK}.config-reloader"), system=True),
        Pod("kube-state-metrics", (f"{_STACK}.kube-state-metrics",), system=True),
        Pod(
            "node-exporter",
            (f"{_STACK}.node-exporter",),
            daemon=True,
            tolerations="NODE_EXPORTER_TOLERATIONS",
        ),
        # Alertmanager runs when there is a receiver: its one replica (the chart's) and the same
        # config reloader sidecar as Prometheus.
        Pod(
            "alertmanager",
            (f"{_STACK}.alertmanager", f"{_STACK}.config-reloader"),
            system=True,
            when=lambda choices: choices.alertmanager,
        ),
        # Grafana and its two sidecars (dashboards, datasources), both on in kube-prometheus-stack.
        Pod(
            "grafana",
            (f"{_STACK}.grafana", f"{_STACK}.grafana-sidecar", f"{_STACK}.grafana-sidecar"),
            when=lambda choices: choices.grafana,
        ),
    ),
    enabled=_observability,
    crds=(
        Crd(_MON, "Alertmanager", "alertmanagers"),
        Crd(_MON, "AlertmanagerConfig", "alertmanagerconfigs", versions=("v1alpha1",)),
        Crd(_MON, "PodMonitor", "podmonitors"),
        Crd(_MON, "Probe", "probes"),
        Crd(_MON, "Prometheus", "prometheuses"),
        Crd(_MON, "PrometheusAgent", "prometheusagents", versions=("v1alpha1",)),
        Crd(_MON, "PrometheusRule", "prometheusrules"),
        Crd(_MON, "ScrapeConfig", "scrapeconfigs", versions=("v1alpha1",)),
        Crd(_MON, "ServiceMonitor", "servicemonitors"),
        Crd(_MON, "ThanosRuler", "thanosrulers"),
    ),
    owns=tuple(f"kubernetes:{_MON}/v1:{kind}" for kind in ("PodMonitor", "ServiceMonitor", "PrometheusRule")),
    node_agent_values="prometheus-node-exporter",
    install_minutes=3.0,
)

PROMETHEUS_ADAPTER = AddOn(
    chart="prometheus-adapter",
    repository=_PROMETHEUS_COMMUNITY,
    key="prometheusAdapter",
    version="5.3.0",
    component="addons.observability",
    resources={("resources",): {}},
    pods=(
        Pod(
            "prometheus-adapter",
            (f"{_STACK}.adapter",),
            replicas="MetricsStackArgs.adapter_replicas",
            system=True,
        ),
    ),
    enabled=_observability,
)

# karpenter 1.14.1: the controller's resources are left to the user (an empty map). Karpenter
# publishes its chart only to an OCI registry (charts.karpenter.sh stopped at 0.16).
KARPENTER = AddOn(
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter",
    key="karpenter",
    version="1.14.1",
    component="compute.karpenter",
    resources={("controller", "resources"): {}},
    pods=(Pod("karpenter", ("RESOURCES",), replicas="REPLICAS", system=True),),
    provisioner=True,
    pinned_when="compute.provisioner karpenter",
    crds=(
        Crd("karpenter.sh", "NodePool", "nodepools", namespaced=False),
        Crd("karpenter.sh", "NodeClaim", "nodeclaims", namespaced=False),
        Crd("karpenter.k8s.aws", "EC2NodeClass", "ec2nodeclasses", namespaced=False),
    ),
    service_account_values="serviceAccount",
    owns=("kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"),
)

# In the order of the ``charts:`` settings.
ADD_ONS: tuple[AddOn, ...] = (
    EXTERNAL_SECRETS,
    AWS_LOAD_BALANCER_CONTROLLER,
    INGRESS_NGINX,
    NVIDIA_DEVICE_PLUGIN,
    NVIDIA_DRA_DRIVER,
    DCGM_EXPORTER,
    CLUSTER_AUTOSCALER,
    KUBE_PROMETHEUS_STACK,
    PROMETHEUS_ADAPTER,
    KARPENTER,
)
BY_CHART: Mapping[str, AddOn] = {addon.chart: addon for addon in ADD_ONS}
