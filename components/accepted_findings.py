"""Findings of an outside Kubernetes scanner (checkov) that the platform accepts on purpose, said on the object.

checkov reads ``checkov.io/skip<N>: <CHECK_ID>=<reason>`` annotations from an object's metadata and
reports that check as skipped, with the reason. A workload annotates only the findings its own
deliberate choices cause, each with the reason; anything else a scan of the plan finds is a finding.
Pure: nothing here creates a resource.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import Problem, require, under

SKIP_ANNOTATION_PREFIX = "checkov.io/skip"
# The checks a workload can accept, by what they ask for.
IMAGE_PULL_POLICY_ALWAYS = "CKV_K8S_15"
SECRETS_AS_FILES = "CKV_K8S_35"
HIGH_UID = "CKV_K8S_40"
IMAGE_DIGEST = "CKV_K8S_43"

_CHECK_ID = re.compile(r"^CKV2?_K8S_[0-9]+$")


def finding_problems(accepted: Mapping[str, str]) -> list[Problem]:
    """Every problem with ``check id -> reason`` pairs, each at its check id."""
    problems: list[Problem] = []
    for check, reason in accepted.items():
        if not _CHECK_ID.fullmatch(check):
            problems.append((check, "not a checkov Kubernetes check id (like CKV_K8S_43)"))
        # checkov splits the annotation value at '=': a reason holding one would break the skip.
        if not reason.strip() or "=" in reason:
            problems.append((check, "the reason must be given, without '='"))
    return problems


def skip_annotations(accepted: Mapping[str, str]) -> dict[str, str]:
    """``checkov.io/skip<N>: <CHECK_ID>=<reason>``, numbered in check id order (stable diffs)."""
    require("skip_annotations", under("accepted", finding_problems(accepted)))
    return {
        f"{SKIP_ANNOTATION_PREFIX}{n}": f"{check}={accepted[check].strip()}"
        for n, check in enumerate(sorted(accepted), 1)
    }
