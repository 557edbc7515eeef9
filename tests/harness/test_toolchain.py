"""The e2e toolchain's Kubernetes releases by minor and what the harness reads of a stack to pick one."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from aiplatform.validation import DEFAULT_KUBERNETES_VERSION, SUPPORTED_KUBERNETES_VERSIONS
from tools.e2e import toolchain
from tools.e2e.checks import control_plane_version
from tools.e2e.stacks import committed_stack_files, committed_stack_minors, kubernetes_minor, stack_config
from tools.e2e.toolchain import (
    CONTROL_PLANE,
    KUBERNETES_RELEASES,
    Binary,
    ToolchainError,
    control_plane,
    control_plane_key,
    control_plane_tools,
    kubernetes_ldflags,
    kubernetes_release,
    kubernetes_wrapper_gomod,
)


def test_each_minor_builds_a_patch_of_itself():
    for minor, release in KUBERNETES_RELEASES.items():
        assert release.startswith(f"v{minor}."), (minor, release)
    assert kubernetes_release("1.36") == "v1.36.3"


def test_a_minor_without_a_release_names_the_stack_key_and_the_table():
    with pytest.raises(ToolchainError) as err:
        kubernetes_release("1.29")
    assert "aiplatform:cluster.kubernetesVersion" in str(err.value)
    assert "KUBERNETES_RELEASES" in str(err.value)
    assert "1.36" in str(err.value)


def test_every_minor_a_stack_may_pin_has_a_release():
    assert committed_stack_files(), "no Pulumi.<stack>.yaml found"
    wanted = committed_stack_minors() | {DEFAULT_KUBERNETES_VERSION} | set(SUPPORTED_KUBERNETES_VERSIONS)
    assert wanted <= set(KUBERNETES_RELEASES), wanted - set(KUBERNETES_RELEASES)


def test_control_planes_of_two_minors_have_their_own_cache_entries():
    tools_36, tools_35 = control_plane_tools("1.36"), control_plane_tools("1.35")
    assert [t.name for t in tools_36] == list(CONTROL_PLANE)
    assert {t.key for t in tools_36} == {f"{c}-v1.36.3" for c in CONTROL_PLANE}
    assert not {t.key for t in tools_36} & {t.key for t in tools_35}
    assert all(t.module == "k8s.io/kubernetes@v1.36.3" for t in tools_36)
    assert tools_36[0].accepts_path_version("v1.36.3")
    assert not tools_36[0].accepts_path_version("v1.34.4")


def test_the_binaries_report_the_release_they_were_built_from():
    flags = kubernetes_ldflags("v1.36.3")
    assert "gitVersion=v1.36.3" in flags
    assert "gitMajor=1 " in flags
    assert "gitMinor=36 " in flags


def test_the_wrapper_points_each_staging_module_at_its_published_version():
    upstream = (
        "module k8s.io/kubernetes\n\nreplace (\n"
        "\tk8s.io/api => ./staging/src/k8s.io/api\n"
        "\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n)\n"
    )
    gomod = kubernetes_wrapper_gomod("v1.36.3", upstream)
    assert "require k8s.io/kubernetes v1.36.3\n" in gomod
    assert "\tk8s.io/api => k8s.io/api v0.36.3\n" in gomod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.36.3\n" in gomod
    with pytest.raises(ToolchainError, match="no staging replacements"):
        kubernetes_wrapper_gomod("v1.36.3", "module k8s.io/kubernetes\n")


def _binary(name: str, version: str) -> Binary:
    return Binary(name, f"/cache/{name}-{version}/{name}", version, "cache")


def test_control_plane_picks_the_minor_asked_for():
    binaries = {"etcd": _binary("etcd", "v3.6.16")}
    for minor, release in (("1.35", "v1.35.4"), ("1.36", "v1.36.3")):
        binaries |= {control_plane_key(c, minor): _binary(c, release) for c in CONTROL_PLANE}
    picked = control_plane(binaries, "1.36")
    assert set(picked) == set(CONTROL_PLANE)
    assert {b.version for b in picked.values()} == {"v1.36.3"}
    with pytest.raises(ToolchainError, match="no Kubernetes 1.37 control plane"):
        control_plane(binaries, "1.37")


def test_ensure_all_refuses_an_unknown_minor_before_building(tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain.shutil, "which", lambda _name: "/usr/bin/go")
    with pytest.raises(ToolchainError, match="'1.29'"):
        toolchain.ensure_all(log=lambda _line: None, root=tmp_path, minors=["1.29"])
    assert not (tmp_path / "bin").exists()


def test_the_stack_minor_comes_from_the_cluster_key_else_the_default(tmp_path):
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text('config:\n  aiplatform:cluster:\n    kubernetesVersion: "1.36"\n')
    assert kubernetes_minor(stack_config(stack)) == "1.36"
    assert kubernetes_minor(stack_config(stack), {"aiplatform:cluster.kubernetesVersion": "1.35"}) == "1.35"
    assert kubernetes_minor({"aiplatform:cluster": {"name": "c"}}) == DEFAULT_KUBERNETES_VERSION
    assert kubernetes_minor({}) == DEFAULT_KUBERNETES_VERSION


def test_committed_stack_minors_reads_every_stack_file(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    (tmp_path / "Pulumi.a.yaml").write_text('config:\n  aiplatform:cluster:\n    kubernetesVersion: "1.36"\n')
    (tmp_path / "Pulumi.b.yaml").write_text("config: {}\n")
    assert committed_stack_minors(tmp_path) == {"1.36", DEFAULT_KUBERNETES_VERSION}


def test_the_version_check_passes_only_when_server_and_eks_report_the_stack_minor():
    served = {"major": "1", "minor": "36", "gitVersion": "v1.36.3"}
    assert control_plane_version(served, {"ai-dev": "1.36"}, "1.36").passed
    assert not control_plane_version(served, {"ai-dev": "1.36"}, "1.35").passed
    assert not control_plane_version(served, {"ai-dev": "1.35"}, "1.36").passed
    assert not control_plane_version(served, {"ai-dev": None}, "1.36").passed
    assert not control_plane_version(served, {}, "1.36").passed  # no EKS cluster to compare
    plus = {"major": "1", "minor": "36+", "gitVersion": "v1.36.3-eks-1"}
    assert control_plane_version(plus, {"ai-dev": "1.36"}, "1.36").passed


def test_an_operators_wrapper_keeps_its_go_line_and_module_replacements_not_local_ones():
    upstream = (
        "module github.com/external-secrets/external-secrets\n\ngo 1.25.1\n\n"
        "replace github.com/Masterminds/sprig/v3 => github.com/external-secrets/sprig/v3 v3.3.0\n\n"
        "replace (\n\tgithub.com/a/b v1.0.0 => github.com/c/b v1.0.1\n\tgithub.com/local => ./local\n)\n"
    )
    gomod = toolchain.module_wrapper_gomod(
        "e2e-external-secrets", "github.com/external-secrets/external-secrets", "v0.20.4", upstream
    )
    assert gomod.startswith("module aiplatform.local/e2e-external-secrets\n\ngo 1.25.1\n")
    assert "require github.com/external-secrets/external-secrets v0.20.4\n" in gomod
    assert "\tgithub.com/Masterminds/sprig/v3 => github.com/external-secrets/sprig/v3 v3.3.0\n" in gomod
    assert "\tgithub.com/a/b v1.0.0 => github.com/c/b v1.0.1\n" in gomod
    assert "./local" not in gomod


def test_the_karpenter_binary_is_keyed_by_the_harness_main_it_is_built_from():
    karpenter = next(t for t in toolchain.OPERATORS if t.name == "karpenter")
    assert karpenter.module == "sigs.k8s.io/karpenter@v1.14.1"
    digest = hashlib.sha256(toolchain.KARPENTER_MAIN.read_bytes()).hexdigest()[:8]
    assert karpenter.key == f"karpenter-v1.14.1-{digest}"


def test_chains_build_side_by_side_and_in_order_within_a_chain(tmp_path):
    started: list[str] = []
    lock = threading.Lock()

    def tool(name: str) -> toolchain.Tool:
        def build(go, work, out):
            with lock:
                started.append(name)
            time.sleep(0.3)
            (out / name).write_text("#!/bin/sh\necho v1\n")
            (out / name).chmod(0o755)

        return toolchain.Tool(name, "v1", f"example.com/{name}@v1", build, (), "", reports=lambda _p: "v1")

    go = toolchain.Go(tmp_path, lambda _line: None)
    chains = [[("a1", tool("a1")), ("a2", tool("a2"))], [("b", tool("b"))]]
    start = time.monotonic()
    built = toolchain.ensure_chains(chains, go, lambda _line: None, workers=2)
    assert time.monotonic() - start < 0.85  # the chains overlapped: 0.6 s for a, 0.3 s for b
    assert started.index("a1") < started.index("a2")
    assert {name: b.source for name, b in built.items()} == {"a1": "built", "a2": "built", "b": "built"}
    assert all(b.ensure_seconds is not None and b.build_seconds is not None for b in built.values())
    again = toolchain.ensure_chains(chains, go, lambda _line: None, workers=2)
    assert {b.source for b in again.values()} == {"cache"}


def test_parallel_builds_follow_available_memory(monkeypatch):
    monkeypatch.delenv("AIPLATFORM_E2E_PARALLEL_BUILDS", raising=False)
    monkeypatch.setattr(toolchain, "_available_memory_gib", lambda: 6.0)
    assert toolchain.parallel_builds() == 1
    monkeypatch.setattr(toolchain, "_available_memory_gib", lambda: 64.0)
    assert toolchain.parallel_builds() == 3
    monkeypatch.setenv("AIPLATFORM_E2E_PARALLEL_BUILDS", "2")
    assert toolchain.parallel_builds() == 2
