"""Fields the program sets that a provider's schema lacks are named, with their path."""

from __future__ import annotations

from tools.e2e.provider_fields import unknown_fields

SCHEMA = {
    "provider": {
        "inputProperties": {"kubeconfig": {"type": "string"}, "enableServerSideApply": {"type": "boolean"}}
    },
    "resources": {
        "kubernetes:apps/v1:Deployment": {
            "inputProperties": {
                "metadata": {"$ref": "#/types/kubernetes:meta/v1:ObjectMeta"},
                "spec": {"$ref": "#/types/kubernetes:apps/v1:DeploymentSpec"},
            }
        }
    },
    "types": {
        "kubernetes:meta/v1:ObjectMeta": {
            "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        },
        "kubernetes:apps/v1:DeploymentSpec": {
            "properties": {
                "replicas": {"type": "integer"},
                "containers": {"type": "array", "items": {"$ref": "#/types/kubernetes:core/v1:Container"}},
                "strategy": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            }
        },
        "kubernetes:core/v1:Container": {
            "properties": {"name": {"type": "string"}, "image": {"type": "string"}}
        },
    },
}


def test_known_fields_and_map_keys_pass_and_unknown_ones_are_named_once_per_type():
    resources = [
        {
            "type": "pulumi:providers:kubernetes",
            "inputs": {"kubeconfig": "x", "enableConfigMapMutable": "true"},
        },
        {
            "type": "kubernetes:apps/v1:Deployment",
            "inputs": {
                "metadata": {"name": "a", "labels": {"any/key": "v"}},
                "spec": {
                    "replicas": 2,
                    "strategy": {"anything": 1},
                    "containers": [
                        {"name": "a", "image": "i", "restartPolicy": "Always"},
                        {"name": "b", "image": "i"},
                    ],
                },
            },
        },
        {
            "type": "kubernetes:apps/v1:Deployment",
            "inputs": {"spec": {"containers": [{"restartPolicy": "Always"}]}},
        },
        {"type": "kubernetes:external-secrets.io/v1:ExternalSecret", "inputs": {"spec": {"whatever": 1}}},
        {"type": "aws:iam/role:Role", "inputs": {"name": "r"}},
    ]
    assert unknown_fields(resources, SCHEMA) == {
        "kubernetes:apps/v1:Deployment": ["spec.containers[].restartPolicy"],
        "pulumi:providers:kubernetes": ["enableConfigMapMutable"],
    }
