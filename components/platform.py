"""``AiPlatform``: the whole platform composed from validated settings.

This is the only place that maps settings to component arguments; every component stays usable on
its own with typed args. The order of the layers is the deploy order:

    network -> cluster -> compute, as the provisioner builds it (node groups with the autoscaler,
            Karpenter, or EKS Auto Mode pools) -> node add-ons
            -> GPU support, tenant namespaces, external secrets, ingress, observability
            -> storage -> workloads
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from .accepted_findings import IMAGE_DIGEST
from .addons.alerts import AlertTargets, PlatformAlerts, PlatformAlertsArgs
from .addons.gpu import DRA_DRIVER_NAMESPACE, GpuSupport, GpuSupportArgs
from .addons.ingress import NGINX_NAMESPACE, IngressController, IngressControllerArgs
from .addons.install import AddOnInstall, installer
from .addons.observability import (
    AlertReceiver,
    CustomMetricRule,
    MetricsStack,
    MetricsStackArgs,
)
from .addons.secrets import ExternalSecrets, ExternalSecretsArgs, SecretSpec
from .catalog import registry
from .catalog.registry import (
    AWS_LOAD_BALANCER_CONTROLLER,
    CLUSTER_AUTOSCALER,
    DCGM_EXPORTER,
    EXTERNAL_SECRETS,
    INGRESS_NGINX,
    KARPENTER,
    KUBE_PROMETHEUS_STACK,
    NVIDIA_DEVICE_PLUGIN,
    NVIDIA_DRA_DRIVER,
    PROMETHEUS_ADAPTER,
)
from .cluster import EksCluster, EksClusterArgs, ExistingCluster, ExistingClusterArgs
from .compute.auto_mode import AutoModeCompute
from .compute.autoscaler import ClusterAutoscaler
from .compute.gpu_capacity import GpuCapacity
from .compute.karpenter import Karpenter
from .compute.node_groups import NodeGroups, NodeGroupSpec
from .compute.pools import GpuPoolSpec
from .compute.provisioner import ChartPin, Compute, ComputeArgs, Provisioner, provisioner_named
from .config import (
    TRAINING_SHM_SIZE,
    BatchSettings,
    ConfigError,
    InferenceSettings,
    PlatformSettings,
    TrainingSettings,
    WorkloadBase,
)
from .config.addons import addon_choices
from .config.capacity import daemon_set_requests
from .dra import DRA, GPU_DEVICE_CLASS, GpuAllocation
from .fit import Namespace
from .network import ExistingNetwork, Network, NetworkArgs
from .outputs import (
    CONTRACT_VERSION,
    KUBECONFIG,
    NamespaceOutputs,
    NodeGroupOutputs,
    NodeRequestsOutputs,
    QuotaOutputs,
    RouteOutputs,
    SharedClaimOutputs,
)
from .podspec import Resources
from .scheduling import Placement
from .storage import ModelBucket, ModelBucketArgs, SharedFileSystem, SharedFileSystemArgs
from .tenancy import TeamNamespace, TeamNamespaceArgs, TeamQuota
from .workloads import (
    Autoscaling,
    BatchInferenceJob,
    BatchInferenceJobArgs,
    InferenceService,
    InferenceServiceArgs,
    LogShipping,
    ModelSource,
    ModelStorage,
    SecretFiles,
    SharedVolume,
    TrainingJob,
    TrainingJobArgs,
)
from .workloads.shared_gpu import SharedGpu, SharedGpuArgs

SecretLookup = Callable[[str], pulumi.Output[str] | None]


class AiPlatform(pulumi.ComponentResource):
    """Network, cluster, GPU support, secrets, ingress, observability, storage and workloads."""

    def __init__(
        self,
        name: str,
        settings: PlatformSettings,
        region: str,
        secret_values: SecretLookup = lambda key: None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        # Secrets the platform cannot do without are checked before anything is registered.
        self._kubeconfig = self._existing_kubeconfig(settings, secret_values)
        super().__init__("aiplatform:index:AiPlatform", name, None, opts)
        self.settings = settings
        self.region = region
        self._name = name
        self._secret_values = secret_values
        self._tags = settings.resource_tags
        # How pods get GPUs (components/dra.py), decided once by the settings: every layer reads it here.
        self.gpu_allocation: GpuAllocation = settings.gpu_allocation
        self._gpu_specs = [g.spec(self.gpu_allocation) for g in settings.nodeGroups.gpu]
        self._pools: list[GpuPoolSpec] = settings.compute.specs(self.gpu_allocation)
        self._gpu_capacity: dict[str, GpuCapacity] = {c.name: c for c in [*self._gpu_specs, *self._pools]}
        # The one choice of where nodes come from: every layer below asks it.
        self.provisioner: Provisioner = provisioner_named(settings.compute.provisioner)
        # Tags are a dev choice (prod's config rule requires digests): said on each workload for the scanner.
        self._accepted_findings = (
            {}
            if settings.is_prod
            else {IMAGE_DIGEST: "dev runs images by tag; prod requires digests (a config rule)"}
        )

        self.network = self._network()
        self.cluster = self._cluster()
        self.compute = self._compute()
        self.node_groups: NodeGroups | None = self.compute.node_groups if self.compute else None
        self.autoscaler: ClusterAutoscaler | None = self.compute.autoscaler if self.compute else None
        self.karpenter: Karpenter | None = self.compute.karpenter if self.compute else None
        self.auto_mode: AutoModeCompute | None = self.compute.auto_mode if self.compute else None
        self._install_node_addons()
        # In-cluster add-ons wait for the system nodes they run on (Helm waits for readiness); the GPU
        # groups and pools are tainted and may sit at zero, so nothing waits for them.
        self._nodes_ready: list[pulumi.Resource] = [self.compute.system_nodes] if self.compute else []
        self.observability = self._observability()
        self.alerts = self._alerts()
        self.gpu = self._gpu_support()
        self.namespaces = self._namespaces()
        self.shared_gpus = self._shared_gpus()
        self.secrets = self._secrets()
        self.ingress = self._ingress()
        self.addons = self._addons()
        self.model_bucket = self._model_bucket()
        self.shared_storage = self._shared_storage()
        self.workloads = self._workloads()
        self.register_outputs({})

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _component_name(self, part: str) -> str:
        return f"{self._name}-{part}"

    @staticmethod
    def _existing_kubeconfig(
        settings: PlatformSettings, secret_values: SecretLookup
    ) -> pulumi.Output[str] | None:
        existing = settings.cluster.existing
        if settings.cluster.mode != "existing" or existing is None:
            return None
        key = existing.kubeconfigSecret
        value = secret_values(key)
        if value is None:
            raise ConfigError(
                [f"aiplatform:{key}: missing: set it with `pulumi config set --secret {key} ...`"]
            )
        return value

    @property
    def managed(self) -> bool:
        return self.settings.cluster.mode == "managed"

    def placement(self, target: str) -> Placement:
        """How a pod lands on a GPU node group or pool: the single source of truth for workloads."""
        return self._gpu_capacity[target].placement

    # -- layers ----------------------------------------------------------------------------------
    def _network(self) -> Network | ExistingNetwork | None:
        net, cluster = self.settings.network, self.settings.cluster
        if not self.managed:
            return None
        if net.existing:
            return ExistingNetwork(
                vpc_id=net.existing.vpcId,
                private_subnet_ids=tuple(net.existing.privateSubnetIds),
                public_subnet_ids=tuple(net.existing.publicSubnetIds),
            )
        return Network(
            self._component_name("network"),
            NetworkArgs(
                cluster_name=cluster.name,
                vpc_cidr=net.vpcCidr,
                az_count=net.azCount,
                nat_gateways=net.natGateways,
                flow_logs=net.flowLogs,
                flow_logs_retention_days=net.flowLogRetentionDays,
                tags=self._tags,
                private_subnet_tags=self._discovery_tags,
            ),
            opts=self._child,
        )

    @property
    def _discovery_tags(self) -> dict[str, str]:
        """What the provisioner finds the nodes' subnets by."""
        return self.provisioner.subnet_tags(self.settings.cluster.name)

    def _cluster(self) -> EksCluster | ExistingCluster:
        c = self.settings.cluster
        if not self.managed:
            existing = c.existing
            assert existing is not None  # guaranteed by the config model
            return ExistingCluster(
                self._component_name("cluster"),
                ExistingClusterArgs(
                    name=c.name,
                    kubeconfig=self._kubeconfig,
                    identity_mode=c.identityMode,
                    oidc_provider_arn=existing.oidcProviderArn,
                    oidc_issuer_url=existing.oidcIssuerUrl,
                ),
                opts=self._child,
            )
        assert self.network is not None
        return EksCluster(
            self._component_name("cluster"),
            EksClusterArgs(
                name=c.name,
                vpc_id=self.network.vpc_id,
                subnet_ids=self.network.private_subnet_ids,
                admin_role_arns=tuple(c.adminRoleArns),
                kubernetes_version=c.kubernetesVersion,
                endpoint_public_access=c.endpoint.publicAccess,
                public_access_cidrs=tuple(c.endpoint.publicAccessCidrs),
                forbid_open_endpoint=self.settings.is_prod,
                enabled_log_types=tuple(c.logTypes),
                log_retention_days=c.logRetentionDays,
                identity_mode=c.identityMode,
                addon_versions=dict(c.addons),
                protect=self.settings.is_prod,
                tags=self._tags,
                auto_mode=self.provisioner.eks_auto_mode,
                auto_mode_system_pool=self.settings.compute.autoMode.builtinSystemPool,
            ),
            opts=self._child,
        )

    def _compute(self) -> Compute | None:
        """The nodes and what provides them, as the provisioner builds them (an existing cluster
        brings its own)."""
        if not isinstance(self.cluster, EksCluster):
            return None
        assert self.network is not None
        compute, charts = self.settings.compute, self.settings.charts
        return self.provisioner.build(
            ComputeArgs(
                name=self._name,
                cluster_name=self.settings.cluster.name,
                cluster=self.cluster,
                network=self.network,
                region=self.region,
                system=self.settings.nodeGroups.system.spec(),
                gpu_groups=self._gpu_specs,
                pools=self._pools,
                kubernetes_version=self.settings.cluster.kubernetesVersion,
                gpu_disk_gib=compute.gpuDiskGiB,
                autoscaler_chart=ChartPin(
                    charts.version(CLUSTER_AUTOSCALER), charts.repository(CLUSTER_AUTOSCALER)
                ),
                karpenter_chart=ChartPin(version, charts.repository(KARPENTER))
                if (version := charts.version(KARPENTER))
                else None,
                karpenter_ami_alias=compute.karpenter.amiAlias if compute.karpenter else None,
                tags=self._tags,
            ),
            self._child,
        )

    def _install_node_addons(self) -> None:
        """The add-ons that run Deployments wait for the nodes they run on."""
        if isinstance(self.cluster, EksCluster) and self.compute is not None:
            self.cluster.install_node_addons(depends_on=[self.compute.system_nodes])

    def _gpu_support(self) -> GpuSupport | None:
        gpu_specs = [*self._gpu_specs, *self._pools]
        if not gpu_specs:
            return None
        charts = self.settings.charts
        dra = self.gpu_allocation == DRA
        return GpuSupport(
            self._component_name("gpu"),
            GpuSupportArgs(
                provider=self.cluster.provider,
                gpu_specs=gpu_specs,
                device_plugin=self.provisioner.installs_device_plugin and not dra,
                device_plugin_chart_version=charts.version(NVIDIA_DEVICE_PLUGIN),
                device_plugin_chart_repository=charts.repository(NVIDIA_DEVICE_PLUGIN),
                **self._dra_driver_args() if dra else {},
                # GPU metrics wherever there are GPUs: the GPU health alerts read them.
                dcgm_exporter=True,
                dcgm_exporter_chart_version=charts.version(DCGM_EXPORTER),
                dcgm_exporter_chart_repository=charts.repository(DCGM_EXPORTER),
                dcgm_service_monitor=self.observability is not None,
                depends_on=self._nodes_ready,
                # The exporter's ServiceMonitor needs the CRD the Prometheus operator brings.
                dcgm_depends_on=self._monitoring_crds,
            ),
            opts=self._child,
        )

    def _dra_driver_args(self) -> dict[str, Any]:
        """GPUs by DRA: the NVIDIA DRA driver (unless the nodes bring it) and the feature gates of the
        sharing strategies the stack's shared claims use."""
        charts = self.settings.charts
        sharing = {
            w.gpu.sharing_strategy for _, _, w in self.settings.workloads.all() if w.gpu and w.gpu.shared
        }
        return dict(
            namespace=DRA_DRIVER_NAMESPACE,
            dra_driver=self.provisioner.installs_dra_driver,
            dra_driver_chart_version=charts.version(NVIDIA_DRA_DRIVER),
            dra_driver_chart_repository=charts.repository(NVIDIA_DRA_DRIVER),
            dra_sharing=tuple(sorted(sharing)),
        )

    @property
    def _monitoring_crds(self) -> list[pulumi.Resource]:
        """What PodMonitors and ServiceMonitors wait for: the release that installs their CRDs."""
        return [self.observability.prometheus] if self.observability else []

    def _ingress_ports(self) -> dict[str, tuple[int, ...]]:
        """Per tenant namespace, the pod ports its network policies admit ingress traffic to."""
        ports: dict[str, set[int]] = {}
        for w in self.settings.workloads.inference:
            ports.setdefault(w.namespace, set()).add(w.port)
        return {ns.name: tuple(sorted(ports.get(ns.name, ()))) or (8080,) for ns in self.settings.namespaces}

    def _namespaces(self) -> dict[str, TeamNamespace]:
        ingress_ports = self._ingress_ports()
        namespaces = {}
        for ns in self.settings.namespaces:
            quota = ns.quota
            namespaces[ns.name] = TeamNamespace(
                self._component_name(f"ns-{ns.name}"),
                TeamNamespaceArgs(
                    name=ns.name,
                    provider=self.cluster.provider,
                    quota=TeamQuota(
                        cpu=quota.cpu,
                        memory=quota.memory,
                        gpus=quota.gpus,
                        pods=quota.pods,
                        persistentvolumeclaims=quota.persistentVolumeClaims,
                        gpu_device_class=GPU_DEVICE_CLASS if self.gpu_allocation == DRA else None,
                    ),
                    ingress_sources=self.settings.ingress.controller,
                    vpc_cidr=self.settings.network.vpcCidr,
                    ingress_controller_namespace=NGINX_NAMESPACE,
                    ingress_ports=ingress_ports[ns.name],
                    egress_to_monitoring=self.settings.observability.enabled,
                ),
                opts=self._child,
            )
        return namespaces

    @property
    def _namespace_resources(self) -> list[pulumi.Resource]:
        return [ns.namespace for ns in self.namespaces.values()]

    def _shared_gpus(self) -> dict[tuple[str, str], SharedGpu]:
        """GPUs by DRA: one claim per shared name of a namespace, which its workloads' pods share."""
        shared: dict[tuple[str, str], SharedGpu] = {}
        for _, _, w in self.settings.workloads.all():
            gpu = w.gpu
            if gpu is None or gpu.shared is None or (w.namespace, gpu.shared) in shared:
                continue
            shared[(w.namespace, gpu.shared)] = SharedGpu(
                f"{w.namespace}-{gpu.shared}",
                SharedGpuArgs(
                    provider=self.cluster.provider,
                    namespace=w.namespace,
                    placement=self.placement(gpu.target),
                    count=gpu.count,
                    selector=gpu.gpu_selector(),
                    sharing=gpu.sharing_strategy,
                    depends_on=[self.namespaces[w.namespace].namespace],
                ),
                opts=self._child,
            )
        return shared

    def _secrets(self) -> ExternalSecrets:
        specs = [
            SecretSpec(
                name=s.name,
                namespace=s.namespace,
                keys=tuple(s.keys),
                description=s.description,
                existing_arn=s.existingArn,
                initial_value=self._secret_values(s.valueFrom) if s.valueFrom else None,
                refresh_interval=s.refreshInterval,
            )
            for s in self.settings.secrets
        ]
        return ExternalSecrets(
            self._component_name("secrets"),
            ExternalSecretsArgs(
                stack_name=f"{pulumi.get_project()}-{pulumi.get_stack()}",
                region=self.region,
                identity=self.cluster.identity,
                provider=self.cluster.provider,
                chart_version=self.settings.charts.version(EXTERNAL_SECRETS),
                chart_repository=self.settings.charts.repository(EXTERNAL_SECRETS),
                specs=specs,
                protect=self.settings.is_prod,
                tags=self._tags,
                # A secret may live in the metrics namespace (the alert receiver's).
                depends_on=[*self._nodes_ready, *self._namespace_resources, *self._metrics_namespace],
            ),
            opts=self._child,
        )

    @property
    def _metrics_namespace(self) -> list[pulumi.Resource]:
        return [self.observability.namespace] if self.observability else []

    def _ingress(self) -> IngressController:
        ingress, charts = self.settings.ingress, self.settings.charts
        vpc_id = self.network.vpc_id if self.network else ""
        return IngressController(
            self._component_name("ingress"),
            IngressControllerArgs(
                provider=self.cluster.provider,
                cluster_name=self.cluster.name,
                region=self.region,
                vpc_id=vpc_id,
                identity=self.cluster.identity,
                alb_chart_version=charts.version(AWS_LOAD_BALANCER_CONTROLLER),
                alb_chart_repository=charts.repository(AWS_LOAD_BALANCER_CONTROLLER),
                controller=ingress.controller,
                nginx_chart_version=charts.version(INGRESS_NGINX),
                nginx_chart_repository=charts.repository(INGRESS_NGINX),
                scheme=ingress.scheme,
                certificate_arn=ingress.certificateArn,
                tls_secret_name=ingress.tlsSecret,
                ssl_policy=ingress.sslPolicy,
                # prod: every public route must use TLS (the config check says so first).
                require_tls=self.settings.is_prod and ingress.scheme == "internet-facing",
                eks_auto_mode=not self.provisioner.runs_alb_controller,
                depends_on=self._nodes_ready,
                tags=self._tags,
            ),
            opts=self._child,
        )

    def _addons(self) -> dict[str, pulumi.ComponentResource]:
        """Every add-on whose descriptor says how to install it and that the stack enables, by chart,
        in the registry's order."""
        choices = addon_choices(self.settings)
        return {
            addon.chart: installer(addon)(self._addon_install(addon))
            for addon in registry.ADD_ONS
            if addon.install is not None and addon.enabled(choices)
        }

    def _addon_install(self, addon: registry.AddOn) -> AddOnInstall:
        charts = self.settings.charts
        version = charts.version(addon)
        assert version is not None  # an add-on installed this way has a pin or a default
        return AddOnInstall(
            name=self._component_name(addon.chart),
            provider=self.cluster.provider,
            chart_version=version,
            chart_repository=charts.repository(addon),
            identity=self.cluster.identity,
            is_prod=self.settings.is_prod,
            depends_on=self._nodes_ready,
            tags=self._tags,
            opts=self._child,
        )

    def _observability(self) -> MetricsStack | None:
        obs, charts = self.settings.observability, self.settings.charts
        if not obs.enabled:
            return None
        return MetricsStack(
            self._component_name("metrics"),
            MetricsStackArgs(
                provider=self.cluster.provider,
                prometheus_chart_version=charts.version(KUBE_PROMETHEUS_STACK),
                prometheus_chart_repository=charts.repository(KUBE_PROMETHEUS_STACK),
                adapter_chart_version=charts.version(PROMETHEUS_ADAPTER),
                adapter_chart_repository=charts.repository(PROMETHEUS_ADAPTER),
                custom_metrics=tuple(
                    CustomMetricRule(name=m.name, series=m.series, kind=m.kind) for m in obs.customMetrics
                ),
                retention=obs.prometheusRetention,
                storage_size=obs.prometheusStorage,
                grafana_enabled=obs.grafana,
                # Every node exporter pod tolerates the taints of every group and pool.
                node_groups=[*self._all_node_groups, *self._pools],
                alert_receiver=self._alert_receiver(),
                depends_on=self._nodes_ready,
            ),
            opts=self._child,
        )

    @property
    def _all_node_groups(self) -> list[NodeGroupSpec]:
        return [self.settings.nodeGroups.system.spec(), *self._gpu_specs]

    def _alert_receiver(self) -> AlertReceiver | None:
        receiver = self.settings.observability.alerting.delivery
        if receiver is None:
            return None
        return AlertReceiver(
            kind=receiver.type, secret=receiver.secret, key=receiver.key, channel=receiver.channel
        )

    def _alerts(self) -> PlatformAlerts | None:
        """The platform's alert rules, about the objects this program creates."""
        if self.observability is None:
            return None
        workloads = [w.alert_target() for _, _, w in self.settings.workloads.all()]
        targets = AlertTargets(
            workloads=[target for target in workloads if target is not None],
            # Only groups this program sizes (an existing cluster brings its own; pools have limits).
            node_groups=self._all_node_groups if self.managed and self.node_groups else [],
            gpu=bool(self._gpu_specs or self._pools),
            gpu_memory_ratio=self.settings.observability.alerting.gpuMemoryPercent / 100,
            gpu_claims=self.gpu_allocation == DRA,
        )
        return PlatformAlerts(
            self._component_name("alerts"),
            PlatformAlertsArgs(
                provider=self.cluster.provider,
                namespace=self.observability.namespace_name,
                targets=targets,
                depends_on=[self.observability.prometheus],
            ),
            opts=self._child,
        )

    @functools.cached_property
    def model_bucket_name(self) -> str:
        """A known, globally unique name, so pipelines know where to upload models."""
        configured = self.settings.storage.modelBucket.name
        if configured:
            return configured
        account = aws.get_caller_identity().account_id
        return f"{self.settings.cluster.name}-models-{account}-{self.region}"

    def _model_bucket(self) -> ModelBucket:
        bucket = self.settings.storage.modelBucket
        return ModelBucket(
            self._component_name("models"),
            ModelBucketArgs(
                bucket_name=self.model_bucket_name,
                protect=self.settings.is_prod,
                noncurrent_version_days=bucket.noncurrentVersionDays,
                tags=self._tags,
            ),
            opts=self._child,
        )

    def _shared_storage(self) -> SharedFileSystem | None:
        shared = self.settings.storage.sharedFileSystem
        if not shared.enabled or self.network is None or not isinstance(self.cluster, EksCluster):
            return None
        assert shared.efsCsiDriverVersion is not None  # guaranteed by the config model
        return SharedFileSystem(
            self._component_name("shared-fs"),
            SharedFileSystemArgs(
                provider=self.cluster.provider,
                identity=self.cluster.identity,
                vpc_id=self.network.vpc_id,
                subnet_ids=self.network.private_subnet_ids,
                subnet_count=len(self.network.private_subnets) if isinstance(self.network, Network) else None,
                cluster_security_group_id=self.cluster.security_group_id,
                csi_driver_version=shared.efsCsiDriverVersion,
                claim_name=shared.claimName,
                claim_namespace=shared.namespace,
                claim_size=shared.size,
                protect=self.settings.is_prod,
                tags=self._tags,
                depends_on=[*self._nodes_ready, self.namespaces[shared.namespace].namespace],
            ),
            opts=self._child,
        )

    # -- workloads -------------------------------------------------------------------------------
    def _workload_components(self) -> dict[type[WorkloadBase], Callable[[Any], pulumi.ComponentResource]]:
        """Each workload kind's settings type, and what builds its component from them."""
        return {
            InferenceSettings: self._inference_service,
            TrainingSettings: self._training_job,
            BatchSettings: self._batch_job,
        }

    def _workloads(self) -> dict[str, dict[str, pulumi.ComponentResource]]:
        """Every workload's component, by kind and name."""
        build = self._workload_components()
        built: dict[str, dict[str, pulumi.ComponentResource]] = {
            kind: {} for kind in self.settings.workloads.kinds()
        }
        for kind, _, w in self.settings.workloads.all():
            built[kind][w.name] = build[type(w)](w)
        return built

    @functools.cached_property
    def _workload_namespaces(self) -> dict[str, Namespace]:
        """Each tenant namespace's name with what it admits: the workloads there are checked against it."""
        ports = self._ingress_ports()
        observability = self.settings.observability
        served = tuple(m.name for m in observability.customMetrics) if observability.enabled else ()
        return {
            ns.name: Namespace(dataclasses.replace(ns.fit(ports[ns.name]), served_metrics=served))
            for ns in self.settings.namespaces
        }

    def _workload_args(self, w: WorkloadBase) -> dict[str, Any]:
        """The arguments every workload kind shares, mapped from its settings."""
        config = w.config
        used_secrets = {ref.secret for ref in w.secretEnv} | {f.secret for f in w.secretFiles}
        waits_for: list[pulumi.Resource] = [self.namespaces[w.namespace].namespace]
        waits_for += [es for name, es in self.secrets.external_secrets.items() if name in used_secrets]
        shared = self.shared_gpus.get((w.namespace, w.gpu.shared)) if w.gpu and w.gpu.shared else None
        if shared is not None:
            waits_for.append(shared.claim)
        if w.gpu and self.compute:  # its nodes outlive it on destroy
            waits_for += self.compute.capacity(w.gpu.target)
        return dict(
            provider=self.cluster.provider,
            namespace=self._workload_namespaces[w.namespace],
            image=w.image,
            resources=Resources(
                cpu=w.resources.requests.cpu,
                memory=w.resources.requests.memory,
                cpu_limit=w.resources.limits.cpu,
                memory_limit=w.resources.limits.memory,
            ),
            placement=self.placement(w.gpu.target) if w.gpu else None,
            gpus=w.gpu.per_pod if w.gpu else 0,
            gpu_selector=w.gpu.gpu_selector() if w.gpu and not w.gpu.shared else None,
            shared_gpu=shared.reference if shared is not None else None,
            command=list(w.command) or None,
            args=list(w.args) or None,
            env=dict(w.env),
            config_data=dict(config.data) if config else None,
            config_env=dict(config.env) if config else {},
            config_files={f.key: f.mountPath for f in config.files} if config and config.files else None,
            config_map_name=config.name if config else None,
            secret_env=[(ref.name, ref.secret, ref.key) for ref in w.secretEnv],
            secret_files=[SecretFiles(f.secret, f.mountPath, tuple(f.keys)) for f in w.secretFiles],
            run_as_user=w.securityContext.runAsUser,
            run_as_group=w.securityContext.runAsGroup,
            accepted_findings=self._accepted_findings,
            identity=self.cluster.identity,
            depends_on=waits_for,
        )

    def _inference_service(self, w: InferenceSettings) -> InferenceService:
        scaling = w.autoscaling
        route = (
            self.ingress.route(w.ingress.host, w.ingress.path, w.ingress.tls, health_check_path=w.probes.path)
            if w.ingress
            else None
        )
        return InferenceService(
            w.name,
            InferenceServiceArgs(
                **self._workload_args(w),
                port=w.port,
                replicas=w.replicas,
                autoscaling=Autoscaling(
                    min_replicas=scaling.minReplicas,
                    max_replicas=scaling.maxReplicas,
                    cpu_utilization=scaling.cpuUtilization,
                    memory_utilization=scaling.memoryUtilization,
                    pods_metrics=[(m.name, m.averageValue) for m in scaling.customMetrics],
                    accepts_lower_ceiling=scaling.acceptsLowerCeiling,
                )
                if scaling
                else None,
                readiness_path=w.probes.path,
                liveness_path=w.probes.path,
                startup_seconds=w.probes.startupSeconds,
                model=ModelSource(
                    bucket=self.model_bucket_name,
                    prefix=w.modelFetch.prefix,
                    kms_key_arn=self.model_bucket.kms_key_arn,
                    region=self.region,
                    image=w.modelFetch.image,
                )
                if w.modelFetch
                else None,
                model_storage=ModelStorage(
                    kind=w.modelStorage.type,
                    size=w.modelStorage.size,
                    mount_path=w.modelStorage.mountPath,
                    storage_class=w.modelStorage.storageClass,
                )
                if w.modelStorage
                else None,
                log_shipping=LogShipping(image=w.logShipper.image, log_path=w.logShipper.logPath)
                if w.logShipper
                else None,
                route=route,
                ingress_depends_on=[self.ingress.ready],
                metrics_path=w.metricsPath if self.observability else None,
                metrics_depends_on=self._monitoring_crds,
            ),
            opts=self._child,
        )

    def _training_job(self, w: TrainingSettings) -> TrainingJob:
        shared = None
        extra: list[pulumi.Resource] = []
        if w.sharedStorageMountPath and self.shared_storage is not None:
            shared = SharedVolume(
                claim_name=self.settings.storage.sharedFileSystem.claimName,
                mount_path=w.sharedStorageMountPath,
            )
            extra.append(self.shared_storage.claim)
        common = self._workload_args(w)
        common["depends_on"] = [*common["depends_on"], *extra]
        return TrainingJob(
            w.name,
            TrainingJobArgs(
                **common,
                completions=w.completions,
                parallelism=w.parallelism,
                backoff_limit=w.backoffLimit,
                ttl_seconds_after_finished=w.ttlSecondsAfterFinished,
                active_deadline_seconds=w.activeDeadlineSeconds,
                index_arg=w.indexArg,
                shared_volume=shared,
                shm_size=TRAINING_SHM_SIZE,
            ),
            opts=self._child,
        )

    def _batch_job(self, w: BatchSettings) -> BatchInferenceJob:
        return BatchInferenceJob(
            w.name,
            BatchInferenceJobArgs(
                **self._workload_args(w),
                schedule=w.schedule,
                time_zone=w.timeZone,
                starting_deadline_seconds=w.startingDeadlineSeconds,
                backoff_limit=w.backoffLimit,
                active_deadline_seconds=w.activeDeadlineSeconds,
                config_mount_path=w.configMountPath,
            ),
            opts=self._child,
        )

    # -- outputs ---------------------------------------------------------------------------------
    def exports(self) -> dict[str, Any]:
        """Stack outputs: the contract a team's program reads (``outputs.PlatformOutputs``), then the
        identifiers operators need. The kubeconfig only as a secret."""
        identity = self.cluster.identity
        ports = self._ingress_ports()
        shared = self.settings.storage.sharedFileSystem
        observability = self.settings.observability
        specs = [self.settings.nodeGroups.system.spec()] if self.managed else []
        outputs: dict[str, Any] = {
            "contractVersion": CONTRACT_VERSION,
            "clusterName": self.cluster.name,
            KUBECONFIG: pulumi.Output.secret(self.cluster.kubeconfig),
            "region": self.region,
            "identityMode": identity.mode,
            "oidcProviderArn": identity.oidc_provider_arn,
            "oidcIssuerUrl": identity.oidc_issuer_url,
            "namespaces": {
                ns.name: NamespaceOutputs(
                    ingress_ports=ports[ns.name],
                    quota=QuotaOutputs(cpu=ns.quota.cpu, memory=ns.quota.memory, gpus=ns.quota.gpus),
                ).export()
                for ns in self.settings.namespaces
            },
            "modelBucket": self.model_bucket.bucket,
            "modelBucketKmsKeyArn": self.model_bucket.kms_key_arn,
            "ingressClass": self.ingress.class_name,
            "ingressRoutes": RouteOutputs.from_settings(self.ingress.settings).export(),
            "sharedClaim": SharedClaimOutputs(
                namespace=shared.namespace, claim_name=shared.claimName
            ).export()
            if self.shared_storage is not None
            else None,
            # GPU pools are placed like GPU groups: a team's placement(name) reads either.
            "nodeGroups": self._node_group_outputs(specs),
            "customMetrics": [m.name for m in observability.customMetrics] if observability.enabled else [],
            "secretArns": self.secrets.secret_arns,
        }
        if self.network is not None:
            outputs["vpcId"] = self.network.vpc_id
            outputs["privateSubnetIds"] = self.network.private_subnet_ids
        if isinstance(self.cluster, EksCluster):
            outputs["clusterEndpoint"] = self.cluster.endpoint
        if self.managed:
            outputs["compute"] = self._compute_summary()
        return outputs

    def _node_group_outputs(self, system: list[NodeGroupSpec]) -> dict[str, Any]:
        """Each node group and pool as a team places pods there, with what its DaemonSets take of
        each node (so a team's workloads are judged against the room the stack path judges)."""
        groups = {
            **{s.name: NodeGroupOutputs.from_spec(s) for s in [*system, *self._gpu_specs]},
            **{p.name: NodeGroupOutputs.from_pool(p) for p in self._pools},
        }
        daemons = daemon_set_requests(self.settings)
        return {
            name: group.model_copy(
                update={"daemon_set_requests": NodeRequestsOutputs(cpu_m=d.cpu_m, memory_mib=d.memory_mib)}
                if (d := daemons.get(name))
                else {}
            ).export()
            for name, group in groups.items()
        }

    def _compute_summary(self) -> dict[str, Any]:
        """Where GPU capacity comes from, and what EKS runs itself instead of the program."""
        summary: dict[str, Any] = {"provisioner": self.provisioner.name}
        if self._pools:
            summary["pools"] = {
                p.name: {
                    "instanceTypes": list(p.instance_types),
                    "capacityTypes": list(p.capacity_types),
                    "limits": {"gpus": p.max_gpus, "cpu": p.max_cpu},
                }
                for p in self._pools
            }
        if self.karpenter is not None:
            summary["karpenter"] = {
                "interruptionQueue": self.karpenter.queue.name,
                "nodeRole": self.karpenter.node_role.name,
            }
        if self.gpu_allocation == DRA:
            summary["gpuAllocation"] = {"mode": DRA, "deviceClass": GPU_DEVICE_CLASS}
        if runs := self.provisioner.eks_runs(self.gpu_allocation):
            summary["runByEks"] = list(runs)
        return summary
