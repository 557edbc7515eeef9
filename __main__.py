"""The AI platform: load the stack's settings, build the platform, export what operators need."""

import pulumi

from aiplatform.config import RESOURCE_PREFIX, load_settings, secret_value
from aiplatform.platform import AiPlatform

settings = load_settings()
platform = AiPlatform(
    RESOURCE_PREFIX,
    settings,
    region=pulumi.Config("aws").require("region"),
    secret_values=secret_value,
)

for name, value in platform.exports().items():
    pulumi.export(name, value)
