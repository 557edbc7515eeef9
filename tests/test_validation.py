"""The pure validators of AWS and Kubernetes limits."""

from __future__ import annotations

import pytest

from aiplatform import validation


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("team", True),
        ("example.com/team", True),
        ("a.b-c_d", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("team_", False),
        ("-team", False),
        ("Example.com/team", False),
        ("/team", False),
        ("example.com/", False),
        ("a/b/c", False),
    ],
)
def test_label_keys(key, ok):
    assert (validation.label_key(key) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"), [("", True), ("ml", True), ("v" * 63, True), ("v" * 64, False), ("a b", False)]
)
def test_label_values(value, ok):
    assert (validation.label_value(value) is None) is ok


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("team", None),
        ("cost center", None),
        ("équipe", None),
        ("a:b/c=d+e-f@g_h.i", None),
        ("", "tag keys are 1 to 128 characters"),
        ("k" * 128, None),
        ("k" * 129, "tag keys are 1 to 128 characters"),
        ("AWS:name", "the aws: prefix is reserved for AWS"),
        ("team#1", "tag keys hold letters, digits, spaces and _ . : / = + - @ only"),
        ("line\nbreak", "tag keys hold letters, digits, spaces and _ . : / = + - @ only"),
    ],
)
def test_aws_tag_keys(key, problem):
    assert validation.aws_tag_key(key) == problem


def test_aws_tag_values():
    assert validation.aws_tag_value("") is None
    assert validation.aws_tag_value("v" * 256) is None
    assert validation.aws_tag_value("v" * 257) == "tag values are at most 256 characters"
    assert (
        validation.aws_tag_value("a*b") == "tag values hold letters, digits, spaces and _ . : / = + - @ only"
    )
