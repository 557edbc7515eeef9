"""Scanner findings accepted on purpose: the annotations, and the report of make scan."""

from __future__ import annotations

import pytest

from aiplatform import accepted_findings
from tools.scan import render


def test_skip_annotations_are_numbered_in_check_order_with_their_reasons():
    assert accepted_findings.skip_annotations({"CKV_K8S_43": "dev runs tags", "CKV_K8S_15": " digests "}) == {
        "checkov.io/skip1": "CKV_K8S_15=digests",
        "checkov.io/skip2": "CKV_K8S_43=dev runs tags",
    }
    assert accepted_findings.skip_annotations({}) == {}


def test_a_skip_needs_a_check_id_and_a_reason_checkov_can_read():
    with pytest.raises(ValueError) as info:
        accepted_findings.skip_annotations({"K8S_1": "why", "CKV_K8S_15": "a=b", "CKV2_K8S_6": " "})
    assert str(info.value) == (
        "skip_annotations:\n"
        "  - accepted.K8S_1: not a checkov Kubernetes check id (like CKV_K8S_43)\n"
        "  - accepted.CKV_K8S_15: the reason must be given, without '='\n"
        "  - accepted.CKV2_K8S_6: the reason must be given, without '='"
    )


def test_the_scan_report_counts_and_lists_skips_and_failures():
    report = {
        "summary": {"passed": 3, "failed": 1, "skipped": 1, "checkov_version": "3.3.30", "resource_count": 2},
        "results": {
            "skipped_checks": [
                {
                    "check_id": "CKV_K8S_43",
                    "resource": "Job.ns.a",
                    "check_result": {"suppress_comment": "why"},
                }
            ],
            "failed_checks": [{"check_id": "CKV_K8S_40", "resource": "Job.ns.b", "check_name": "high UID"}],
        },
    }
    lines, failed = render("dev", report)
    assert lines == [
        "dev: 3 passed, 1 failed, 1 skipped (checkov 3.3.30, 2 objects)",
        "  skipped CKV_K8S_43 on Job.ns.a: why",
        "  FAILED  CKV_K8S_40 on Job.ns.b: high UID",
    ]
    assert failed == 1
