import dataclasses
import json

import pulumi
import pulumi_aws as aws
import pytest
import yaml
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.rpc import UNKNOWN
from pulumi.runtime.sync_await import _sync_await

from aiplatform.cluster import (
    EBS_CSI_POLICY_ARN,
    EksCluster,
    EksClusterArgs,
    ExistingCluster,
    ExistingClusterArgs,
)
from aiplatform.errors import ArgumentsError
from aiplatform.kubeconfig import build_kubeconfig, region_from_arn
from aiplatform.plan.mock_engine import PlatformMocks, RecordingMonitor
from tests.conftest import is_secret, resolve

ADMIN = "arn:aws:iam::123456789012:role/PlatformAdmin"
DEPLOYER = "arn:aws:iam::123456789012:role/ci/Deployer"
VERSIONS = {
    "vpc-cni": "v1.20.4-eksbuild.1",
    "kube-proxy": "v1.34.1-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
    "coredns": "v1.12.4-eksbuild.1",
    "aws-ebs-csi-driver": "v1.51.1-eksbuild.1",
    "metrics-server": "v0.8.0-eksbuild.2",
}
EKS_CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"


def make_args(**overrides) -> EksClusterArgs:
    values = {
        "name": "ai",
        "vpc_id": "vpc-123",
        "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
        "admin_role_arns": [ADMIN],
        "kubernetes_version": "1.34",
        "addon_versions": VERSIONS,
    }
    values.update(overrides)
    return EksClusterArgs(**values)


def node_group(cluster: EksCluster) -> aws.eks.NodeGroup:
    return aws.eks.NodeGroup(
        "system-nodes",
        cluster_name=cluster.name,
        node_role_arn="arn:aws:iam::123456789012:role/nodes",
        subnet_ids=["subnet-a"],
        scaling_config={"desired_size": 2, "min_size": 2, "max_size": 3},
    )


def test_cluster_is_private_encrypted_logged_and_api_authenticated(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args()))
    reg = monitor.named("ai-cluster")
    inputs = reg.inputs
    assert inputs["name"] == "ai"
    assert inputs["version"] == "1.34"
    assert inputs["vpcConfig"] == {
        "subnetIds": ["subnet-a", "subnet-b", "subnet-c"],
        "endpointPrivateAccess": True,
        "endpointPublicAccess": False,
    }
    assert inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    key_arn = resolve(cluster.kms_key_arn)
    assert key_arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert inputs["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": key_arn}}
    assert inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    assert inputs["roleArn"] == resolve(cluster.cluster_role.arn)
    assert inputs["deletionProtection"] is False
    assert not reg.protect

    key = monitor.named("ai-secrets-key").inputs
    assert (key["enableKeyRotation"], key["deletionWindowInDays"]) == (True, 30)
    assert monitor.named("ai-secrets-key-alias").inputs["name"] == "alias/eks/ai-secrets"
    kms_policy = json.loads(monitor.named("ai-cluster-kms").inputs["policy"])
    assert kms_policy["Statement"][0]["Resource"] == [key_arn]

    trust = json.loads(monitor.named("ai-cluster-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "eks.amazonaws.com"}
    assert (
        monitor.named("ai-cluster-policy").inputs["policyArn"]
        == "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    )

    # The log group exists before the cluster, so EKS never creates an unmanaged one.
    log_group = monitor.named("ai-logs")
    assert log_group.inputs["name"] == "/aws/eks/ai/cluster"
    assert log_group.inputs["retentionInDays"] == 90
    assert log_group.urn in reg.dependencies
    assert monitor.named("ai-cluster-policy").urn in reg.dependencies

    assert resolve(cluster.name) == "ai"
    assert resolve(cluster.endpoint).endswith(".gr7.us-east-1.eks.amazonaws.com")
    assert resolve(cluster.security_group_id).startswith("sg-")
    assert resolve(cluster.vpc_id) == "vpc-123"


def test_public_endpoint_is_restricted_to_the_given_cidrs(build, monitor):
    build(
        lambda: EksCluster(
            "ai",
            make_args(
                endpoint_public_access=True,
                public_access_cidrs=["203.0.113.0/24"],
                enabled_log_types=["api", "audit", "authenticator", "scheduler"],
                log_retention_days=30,
            ),
        )
    )
    inputs = monitor.named("ai-cluster").inputs
    assert inputs["vpcConfig"]["endpointPublicAccess"] is True
    assert inputs["vpcConfig"]["endpointPrivateAccess"] is True
    assert inputs["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator", "scheduler"]
    assert monitor.named("ai-logs").inputs["retentionInDays"] == 30


def test_open_endpoint_is_allowed_unless_forbidden(build, monitor):
    build(lambda: EksCluster("ai", make_args(endpoint_public_access=True, public_access_cidrs=["0.0.0.0/0"])))
    assert monitor.named("ai-cluster").inputs["vpcConfig"]["publicAccessCidrs"] == ["0.0.0.0/0"]


def test_kubeconfig_is_a_secret_and_feeds_the_provider(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args(admin_role_arns=[ADMIN, DEPLOYER])))
    assert is_secret(cluster.kubeconfig)
    provider = monitor.named("ai-k8s")
    assert provider.type == "pulumi:providers:kubernetes"
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert provider.parent == monitor.named("ai").urn
    # Server-side apply; ConfigMaps with a fixed name update in place (see aiplatform.k8s_objects).
    assert provider.inputs["enableServerSideApply"] == "true"
    assert provider.inputs["enableConfigMapMutable"] == "true"
    # It authenticates through the access entries, so it waits for them (and their policies).
    for dependency in ("ai-cluster", "ai-admin-platformadmin", "ai-admin-deployer-policy"):
        assert monitor.named(dependency).urn in provider.dependencies

    config = yaml.safe_load(resolve(cluster.kubeconfig))
    assert config["clusters"][0]["cluster"] == {
        "server": resolve(cluster.endpoint),
        "certificate-authority-data": resolve(cluster.certificate_authority_data),
    }
    assert config["users"][0]["user"]["exec"] == {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", "ai", "--region", "us-east-1"],
    }
    assert config["current-context"] == "ai"


def test_kubeconfig_can_assume_an_admin_role(build):
    cluster = build(
        lambda: EksCluster("ai", make_args(admin_role_arns=[ADMIN, DEPLOYER], kubeconfig_role_arn=DEPLOYER))
    )
    args = yaml.safe_load(resolve(cluster.kubeconfig))["users"][0]["user"]["exec"]["args"]
    assert args[-2:] == ["--role-arn", DEPLOYER]


def test_every_admin_role_gets_an_access_entry_with_cluster_admin(build, monitor):
    build(lambda: EksCluster("ai", make_args(admin_role_arns=[ADMIN, DEPLOYER])))
    entries = monitor.of_type("aws:eks/accessEntry:AccessEntry")
    assert sorted(e.inputs["principalArn"] for e in entries) == sorted([ADMIN, DEPLOYER])
    assert {e.inputs["type"] for e in entries} == {"STANDARD"}
    assert {e.inputs["clusterName"] for e in entries} == {"ai"}
    associations = monitor.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert sorted(a.inputs["principalArn"] for a in associations) == sorted([ADMIN, DEPLOYER])
    for association in associations:
        assert association.inputs["policyArn"] == (
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        )
        assert association.inputs["accessScope"] == {"type": "cluster"}
    # Each association waits for its entry.
    assert monitor.named("ai-admin-deployer").urn in monitor.named("ai-admin-deployer-policy").dependencies


def test_oidc_provider_and_workload_identity(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args()))
    oidc = monitor.named("ai-oidc").inputs
    issuer = resolve(cluster.oidc_issuer_url)
    assert issuer.startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    assert oidc["url"] == issuer
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]
    assert cluster.identity.mode == "irsa"
    assert resolve(cluster.identity.oidc_provider_arn) == resolve(cluster.oidc_provider_arn)
    assert resolve(cluster.oidc_provider_arn) == (
        "arn:aws:iam::123456789012:oidc-provider/" + issuer.removeprefix("https://")
    )
    assert resolve(cluster.identity.oidc_issuer_url) == issuer
    assert resolve(cluster.identity.cluster_name) == "ai"


def test_pre_node_addons_come_with_the_cluster_and_node_addons_after_the_nodes(build, monitor):
    def program():
        cluster = EksCluster("ai", make_args())
        created = cluster.install_node_addons(depends_on=[node_group(cluster)])
        return cluster, created

    cluster, created = build(program)
    addons = {r.inputs["addonName"]: r for r in monitor.of_type(ADDON)}
    assert {name: r.inputs["addonVersion"] for name, r in addons.items()} == VERSIONS
    assert [resolve(a.addon_name) for a in created] == ["coredns", "aws-ebs-csi-driver", "metrics-server"]
    assert set(cluster.addons) == set(VERSIONS)
    for name, registration in addons.items():
        assert registration.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"
        assert registration.inputs["clusterName"] == "ai"
        depends_on_nodes = monitor.named("system-nodes").urn in registration.dependencies
        assert depends_on_nodes == (name in ("coredns", "aws-ebs-csi-driver", "metrics-server")), name
        # An upgrade moves an add-on only once the control plane it runs on is at the new minor.
        assert monitor.named("ai-cluster").urn in registration.dependencies, name
    # Node add-ons also wait for the CNI.
    assert monitor.named("ai-addon-vpc-cni").urn in addons["coredns"].dependencies
    # The EBS CSI driver runs with its own IRSA role.
    assert addons["aws-ebs-csi-driver"].inputs["serviceAccountRoleArn"] == resolve(cluster.ebs_csi_role.arn)
    assert "serviceAccountRoleArn" not in addons["coredns"].inputs


def test_node_addons_are_not_created_without_install_node_addons(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args()))
    assert sorted(r.inputs["addonName"] for r in monitor.of_type(ADDON)) == [
        "eks-pod-identity-agent",
        "kube-proxy",
        "vpc-cni",
    ]
    assert set(cluster.addons) == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent"}
    assert cluster.pre_node_addons == list(cluster.addons.values())


def test_install_node_addons_only_once_and_only_pinned_ones(build, monitor):
    def program():
        cluster = EksCluster("ai", make_args(addon_versions={"vpc-cni": VERSIONS["vpc-cni"]}))
        assert cluster.install_node_addons(depends_on=[]) == []
        with pytest.raises(RuntimeError, match="already called"):
            cluster.install_node_addons(depends_on=[])
        return cluster

    cluster = build(program)
    assert [r.inputs["addonName"] for r in monitor.of_type(ADDON)] == ["vpc-cni"]
    assert cluster.ebs_csi_role is None
    # The only role for pods is the CNI's own.
    assert [r.name for r in monitor.of_type("aiplatform:iam:ServiceAccountRole")] == ["ai-vpc-cni"]


def test_ebs_csi_role_trusts_only_its_controller_service_account(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args()))
    trust = json.loads(monitor.named("ai-ebs-csi-role").inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    issuer = resolve(cluster.oidc_issuer_url).removeprefix("https://")
    assert statement["Principal"] == {"Federated": resolve(cluster.oidc_provider_arn)}
    assert statement["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        f"{issuer}:aud": "sts.amazonaws.com",
    }
    assert monitor.named("ai-ebs-csi-managed-0").inputs["policyArn"] == EBS_CSI_POLICY_ARN


def test_vpc_cni_runs_with_its_own_role_trusted_by_aws_node_only(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args()))
    trust = json.loads(monitor.named("ai-vpc-cni-role").inputs["assumeRolePolicy"])
    issuer = resolve(cluster.oidc_issuer_url).removeprefix("https://")
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": resolve(cluster.oidc_provider_arn)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": "system:serviceaccount:kube-system:aws-node",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]
    assert monitor.named("ai-vpc-cni-managed-0").inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    )
    # Nothing beyond the managed policy.
    assert [r.name for r in monitor.registrations if r.name.startswith("ai-vpc-cni-")] == [
        "ai-vpc-cni-role",
        "ai-vpc-cni-managed-0",
    ]
    assert monitor.named("ai-addon-vpc-cni").inputs["serviceAccountRoleArn"] == resolve(
        cluster.vpc_cni_role.arn
    )


def test_pod_identity_mode_binds_the_vpc_cni_role_after_the_agent(build, monitor):
    build(lambda: EksCluster("ai", make_args(identity_mode="pod-identity")))
    association = monitor.named("ai-vpc-cni-association")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system",
        "aws-node",
    )
    addon = monitor.named("ai-addon-vpc-cni")
    assert "serviceAccountRoleArn" not in addon.inputs
    # aws-node reads its credentials from the Pod Identity agent, bound by the role's association.
    assert monitor.named("ai-addon-eks-pod-identity-agent").urn in addon.dependencies
    assert association.urn in addon.dependencies


def test_pod_identity_mode_binds_the_ebs_csi_role_by_association(build, monitor):
    def program():
        cluster = EksCluster("ai", make_args(identity_mode="pod-identity"))
        cluster.install_node_addons(depends_on=[node_group(cluster)])
        return cluster

    cluster = build(program)
    assert cluster.identity.mode == "pod-identity"
    association = monitor.named("ai-ebs-csi-association").inputs
    assert (association["namespace"], association["serviceAccount"], association["clusterName"]) == (
        "kube-system",
        "ebs-csi-controller-sa",
        "ai",
    )
    # No IRSA annotation: the role trusts pods.eks.amazonaws.com, not the OIDC provider.
    assert "serviceAccountRoleArn" not in monitor.named("ai-addon-aws-ebs-csi-driver").inputs


def test_default_storage_class_uses_the_cluster_provider(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args()))
    sc = monitor.named("ai-gp3")
    assert sc.provider_urn == monitor.named("ai-k8s").urn
    assert sc.inputs["metadata"] == {
        "name": "gp3",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    }
    assert sc.inputs["provisioner"] == "ebs.csi.aws.com"
    assert sc.inputs["parameters"] == {
        "type": "gp3",
        "encrypted": "true",
        "kmsKeyId": resolve(cluster.volume_key.arn),
    }
    assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc.inputs["allowVolumeExpansion"] is True
    assert sc.inputs["reclaimPolicy"] == "Delete"


def test_protect_guards_the_key_the_cluster_and_the_volumes(build, monitor):
    build(lambda: EksCluster("ai", make_args(protect=True)))
    for key in ("ai-secrets-key", "ai-volumes-key"):
        assert (monitor.named(key).protect, monitor.named(key).retain_on_delete) == (True, True)
    cluster = monitor.named("ai-cluster")
    assert cluster.protect
    assert cluster.inputs["deletionProtection"] is True
    assert monitor.named("ai-gp3").inputs["reclaimPolicy"] == "Retain"


def test_every_child_is_parented_and_urns_are_unique(build, monitor):
    def program():
        cluster = EksCluster("ai", make_args(admin_role_arns=[ADMIN, DEPLOYER]))
        cluster.install_node_addons(depends_on=[])
        return cluster

    build(program)
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))
    component = monitor.named("ai").urn
    roles = ("ai-ebs-csi-", "ai-vpc-cni-")  # children of the add-ons' ServiceAccountRoles
    direct = [r for r in monitor.registrations if r.name != "ai" and not r.name.startswith(roles)]
    assert direct and all(r.parent == component for r in direct)
    assert monitor.named("ai-ebs-csi").parent == component
    assert monitor.named("ai-vpc-cni").parent == component


def test_two_clusters_in_one_program_do_not_collide(build, monitor):
    build(lambda: [EksCluster("a", make_args(name="a")), EksCluster("b", make_args(name="b"))])
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))
    assert sorted(r.inputs["name"] for r in monitor.of_type(EKS_CLUSTER)) == ["a", "b"]


class UnknownClusterOutputs(PlatformMocks):
    """Like the cloud in a preview: the cluster's computed outputs aren't known yet."""

    def new_resource(self, args):
        ident, outputs = super().new_resource(args)
        if args.typ == EKS_CLUSTER:
            outputs = dict(args.inputs)
        return ident, outputs


def test_preview_tolerates_unknown_cluster_outputs(monitor, build):
    recording = RecordingMonitor(UnknownClusterOutputs())
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        recording.mocks, project="aiplatform", stack="test", preview=True, monitor=recording
    )

    def program():
        cluster = EksCluster("ai", make_args())
        cluster.install_node_addons(depends_on=[])
        return cluster

    cluster = build(program)
    # The issuer, endpoint and ARN are unknown: their consumers register with unknown inputs.
    assert recording.named("ai-oidc").inputs["url"] == UNKNOWN
    assert recording.named("ai-k8s").inputs["kubeconfig"] == "[secret]"  # still a secret while unknown
    assert recording.named("ai-ebs-csi-role").inputs["assumeRolePolicy"] == UNKNOWN
    assert recording.named("ai-gp3").provider_urn == recording.named("ai-k8s").urn
    assert len(recording.of_type(ADDON)) == len(VERSIONS)
    assert not _sync_await(cluster.kubeconfig.is_known())


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"kubernetes_version": "1.30"},
            ("kubernetes_version", "'1.30' is not supported (supported: 1.33, 1.34, 1.35, 1.36)"),
        ),
        (
            {"endpoint_public_access": True},
            ("public_access_cidrs", "must list at least one CIDR when endpoint_public_access is True"),
        ),
        (
            {
                "endpoint_public_access": True,
                "public_access_cidrs": ["0.0.0.0/0"],
                "forbid_open_endpoint": True,
            },
            (
                "public_access_cidrs",
                "0.0.0.0/0 opens the API endpoint to the internet (forbid_open_endpoint is set)",
            ),
        ),
        (
            {"public_access_cidrs": ["10.0.0.0/8"]},
            ("public_access_cidrs", "must be empty when endpoint_public_access is False"),
        ),
        (
            {"identity_mode": "pod-identity", "addon_versions": {"vpc-cni": VERSIONS["vpc-cni"]}},
            ("addon_versions", "identity_mode 'pod-identity' needs 'eks-pod-identity-agent' pinned"),
        ),
        (
            {"admin_role_arns": []},
            ("admin_role_arns", "need at least one role (the cluster creator gets no implicit admin access)"),
        ),
        (
            {"kubeconfig_role_arn": DEPLOYER},
            ("kubeconfig_role_arn", "must be one of admin_role_arns"),
        ),
    ],
)
def test_invalid_args_are_rejected_with_exact_messages(overrides, problem):
    assert make_args(**overrides).problems() == [problem]


def test_every_bad_field_is_listed_at_once(build, monitor):
    args = make_args(
        name="-bad",
        kubernetes_version="1.29",
        subnet_ids=["subnet-a"],
        endpoint_public_access=True,
        public_access_cidrs=["0.0.0.0/0", "10.0.0.1/8"],
        forbid_open_endpoint=True,
        admin_role_arns=["arn:aws:iam::123456789012:user/bob"],
        enabled_log_types=["api", "kubelet"],
        log_retention_days=10,
        identity_mode="kiam",
        addon_versions={"coredns": "latest", "istio": "v1.0.0-eksbuild.1"},
    )
    with pytest.raises(ArgumentsError) as error:
        build(lambda: EksCluster("ai", args))
    assert not monitor.registrations
    assert str(error.value).splitlines() == [
        "EksCluster 'ai':",
        "  - name: '-bad' is not a valid EKS cluster name (1-100 letters, digits, '-' or '_', "
        "starting with a letter or digit)",
        "  - kubernetes_version: '1.29' is not supported (supported: 1.33, 1.34, 1.35, 1.36)",
        "  - subnet_ids: need at least two subnets (in different availability zones)",
        "  - public_access_cidrs: 0.0.0.0/0 opens the API endpoint to the internet (forbid_open_endpoint is set)",
        "  - public_access_cidrs: '10.0.0.1/8' is not an IPv4 CIDR block",
        "  - admin_role_arns: not IAM role ARNs: 'arn:aws:iam::123456789012:user/bob'",
        "  - enabled_log_types: unknown 'kubelet' (allowed: api, audit, authenticator, controllerManager, scheduler)",
        "  - log_retention_days: 10 is not a CloudWatch retention (one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, "
        "180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)",
        "  - identity_mode: 'kiam' is not one of 'irsa', 'pod-identity'",
        "  - addon_versions: unknown add-on 'istio' (known: vpc-cni, kube-proxy, eks-pod-identity-agent, coredns, "
        "aws-ebs-csi-driver, metrics-server)",
        "  - addon_versions.coredns: 'latest' is not a pinned EKS add-on version (like v1.2.3-eksbuild.1)",
    ]


def test_component_revalidates_and_creates_nothing(build, monitor):
    args = make_args()
    object.__setattr__(args, "kubernetes_version", "1.20")
    with pytest.raises(ValueError, match="kubernetes_version: '1.20' is not supported"):
        build(lambda: EksCluster("ai", args))
    assert not monitor.registrations


def test_subnet_ids_may_be_an_output(build, monitor):
    build(lambda: EksCluster("ai", make_args(subnet_ids=pulumi.Output.from_input(["subnet-x", "subnet-y"]))))
    assert monitor.named("ai-cluster").inputs["vpcConfig"]["subnetIds"] == ["subnet-x", "subnet-y"]


# -- bring your own cluster --------------------------------------------------------------------


def test_existing_cluster_creates_only_a_provider(build, monitor):
    existing = build(
        lambda: ExistingCluster(
            "byo",
            ExistingClusterArgs(
                name="shared",
                kubeconfig="apiVersion: v1\nkind: Config\n",
                oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X",
                oidc_issuer_url="https://oidc.example/id/X",
            ),
        )
    )
    assert not [r for r in monitor.registrations if r.type.startswith("aws:")]
    assert [r.type for r in monitor.registrations] == [
        "aiplatform:cluster:ExistingCluster",
        "pulumi:providers:kubernetes",
    ]
    provider = monitor.named("byo-k8s")
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert provider.parent == monitor.named("byo").urn
    assert is_secret(existing.kubeconfig)
    assert resolve(existing.name) == "shared"
    assert existing.identity.mode == "irsa"
    assert resolve(existing.identity.oidc_issuer_url) == "https://oidc.example/id/X"


def test_existing_cluster_with_pod_identity_needs_no_oidc(build, monitor):
    existing = build(
        lambda: ExistingCluster(
            "byo",
            ExistingClusterArgs(
                name="shared", kubeconfig=pulumi.Output.secret("kubeconfig"), identity_mode="pod-identity"
            ),
        )
    )
    assert existing.identity.mode == "pod-identity"
    assert existing.oidc_provider_arn is None
    assert len(monitor.registrations) == 2


def test_existing_cluster_in_irsa_mode_needs_the_oidc_provider(build, monitor):
    with pytest.raises(ArgumentsError) as error:
        build(lambda: ExistingCluster("byo", ExistingClusterArgs(name="shared", kubeconfig="")))
    assert not monitor.registrations
    assert str(error.value) == (
        "ExistingCluster 'byo':\n"
        "  - kubeconfig: must not be empty\n"
        "  - oidc_provider_arn: required when identity_mode is 'irsa'\n"
        "  - oidc_issuer_url: required when identity_mode is 'irsa'"
    )


# -- pure kubeconfig ---------------------------------------------------------------------------


def test_kubeconfig_builder_is_pure():
    text = build_kubeconfig("ai", "https://x.eks.amazonaws.com", "Q0E=", "eu-west-1")
    config = yaml.safe_load(text)
    assert config["users"][0]["user"]["exec"]["args"] == [
        "eks",
        "get-token",
        "--cluster-name",
        "ai",
        "--region",
        "eu-west-1",
    ]
    assert config["contexts"][0]["context"] == {"cluster": "ai", "user": "ai"}
    assert text == build_kubeconfig("ai", "https://x.eks.amazonaws.com", "Q0E=", "eu-west-1")
    assert region_from_arn("arn:aws:eks:eu-west-1:123456789012:cluster/ai") == "eu-west-1"
    with pytest.raises(ValueError):
        region_from_arn("arn:aws:iam::123456789012:role/x")


def test_args_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_args().protect = True


def test_the_ebs_csi_driver_may_use_only_the_volume_key(build, monitor):
    cluster = build(lambda: EksCluster("ai", make_args()))
    key_arn = resolve(cluster.volume_key.arn)
    assert monitor.named("ai-volumes-key").inputs["enableKeyRotation"] is True
    statements = json.loads(monitor.named("ai-ebs-csi-policy").inputs["policy"])["Statement"]
    assert [s["Resource"] for s in statements] == [[key_arn], [key_arn]]
    assert statements[1] == {
        "Effect": "Allow",
        "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
        "Resource": [key_arn],
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }
    assert not [a for s in statements for a in s["Action"] if "*" in a]
