"""The stack configuration: typed, validated, immutable.

``load_settings`` turns the ``aiplatform:`` config of the stack into one ``PlatformSettings`` object or
raises ``ConfigError`` listing every problem with the key path as written in ``Pulumi.<stack>.yaml``::

    aiplatform:workloads.inference[0].autoscaling.maxReplicas: must be >= minReplicas (2)

Field names are the YAML keys (camelCase). Secret values never enter these models: a secret names the
config key that holds its value, and the loader reads it as a Pulumi secret.

Modules: ``_base`` (strict model, value types, rule violations), ``infrastructure``, ``services`` and
``workloads`` (the sections), ``settings`` (the whole platform and its cross-section rules), ``loader``.
"""

from ._base import NAMESPACE, RESOURCE_PREFIX, ConfigError
from .compute import ComputeSettings, GpuPoolSettings
from .infrastructure import (
    ClusterSettings,
    GpuNodeGroupSettings,
    NetworkSettings,
    NodeGroupsSettings,
    SystemNodeGroupSettings,
)
from .loader import (
    SECTIONS,
    load_settings,
    parse_settings,
    problems_of,
    secret_config_keys,
    secret_value,
)
from .services import IngressSettings, SecretSettings
from .settings import PlatformSettings
from .workloads import (
    TRAINING_SHM_SIZE,
    BatchSettings,
    InferenceSettings,
    TrainingSettings,
    WorkloadBase,
)

__all__ = [
    "NAMESPACE",
    "RESOURCE_PREFIX",
    "SECTIONS",
    "TRAINING_SHM_SIZE",
    "BatchSettings",
    "ClusterSettings",
    "ComputeSettings",
    "ConfigError",
    "GpuNodeGroupSettings",
    "GpuPoolSettings",
    "InferenceSettings",
    "IngressSettings",
    "NetworkSettings",
    "NodeGroupsSettings",
    "PlatformSettings",
    "SecretSettings",
    "SystemNodeGroupSettings",
    "TrainingSettings",
    "WorkloadBase",
    "load_settings",
    "parse_settings",
    "problems_of",
    "secret_config_keys",
    "secret_value",
]
