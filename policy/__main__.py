"""The aiplatform guardrails policy pack: ``pulumi preview --policy-pack policy``.

Constructing ``PolicyPack`` starts the policy server, so only the Pulumi CLI runs this file; tests and
the offline plan import the policies from the library (``aiplatform.guardrails``), which the pack's
virtualenv (the project's) has installed. The levels depend on the stack the CLI runs the pack for
(``guardrails.environment_from_env``): prod raises several advisory policies to mandatory.
"""

import os

from pulumi_policy import EnforcementLevel, PolicyPack

from aiplatform.guardrails import PACK_NAME, environment_from_env, policies_for

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=policies_for(environment_from_env(os.environ)),
)
