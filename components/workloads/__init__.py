"""The AI workloads: model servers, training jobs and scheduled batch inference.

Each is a ComponentResource with a typed Args dataclass; the pod specs come from ``components.podspec``.
"""

from ..podspec import Resources
from ._common import AWS_CLI_IMAGE, FLUENT_BIT_IMAGE, SecretFiles, WorkloadArgs
from .batch import (
    BatchInferenceJob,
    BatchInferenceJobArgs,
    validate_cron_schedule,
)
from .inference import (
    Autoscaling,
    InferenceService,
    InferenceServiceArgs,
    LogShipping,
    ModelSource,
    ModelStorage,
    model_reader_statements,
)
from .training import SharedVolume, TrainingJob, TrainingJobArgs

__all__ = [
    "AWS_CLI_IMAGE",
    "FLUENT_BIT_IMAGE",
    "Autoscaling",
    "BatchInferenceJob",
    "BatchInferenceJobArgs",
    "InferenceService",
    "InferenceServiceArgs",
    "LogShipping",
    "ModelSource",
    "ModelStorage",
    "Resources",
    "SecretFiles",
    "SharedVolume",
    "TrainingJob",
    "TrainingJobArgs",
    "WorkloadArgs",
    "model_reader_statements",
    "validate_cron_schedule",
]
