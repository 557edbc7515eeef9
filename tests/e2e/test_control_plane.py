"""The local control plane restarts at another Kubernetes minor on the same etcd data: the base of an
upgrade scenario. ``AIPLATFORM_E2E_RESTART_MINOR`` names the minor to restart at (default: the minor it
started at); the start minor is the committed stacks' (the lowest, when they differ)."""

from __future__ import annotations

import os
import sys

from tools.e2e.cluster import LocalCluster
from tools.e2e.harness import OUT
from tools.e2e.stacks import committed_stack_minors
from tools.e2e.toolchain import control_plane, ensure_control_plane, kwok_stage_dir


def _served_minor(cluster: LocalCluster) -> str:
    version = cluster.server_version()
    return f"{version['major']}.{version['minor'].rstrip('+')}"


def test_restart_at_another_minor_keeps_the_data(binaries, report, tmp_path):
    start = min(committed_stack_minors(), key=lambda m: tuple(map(int, m.split("."))))
    target = os.environ.get("AIPLATFORM_E2E_RESTART_MINOR", start)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    found = {**binaries, **ensure_control_plane(start, log), **ensure_control_plane(target, log)}
    run_dir = OUT / "runs" / f"restart-{start}-{target}-{os.getpid()}"
    with LocalCluster(run_dir, {**found, **control_plane(found, start)}, kwok_stage_dir()) as cluster:
        assert _served_minor(cluster) == start
        marker = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}, "data": {"k": "v"}}
        cluster.api.request("POST", "/api/v1/namespaces/default/configmaps", marker)
        before = cluster.processes["kube-apiserver"].pid

        cluster.restart_control_plane(control_plane(found, target))

        assert cluster.processes["kube-apiserver"].pid != before
        assert _served_minor(cluster) == target
        kept = cluster.api.get("ConfigMap", "kept", "default")
        assert kept is not None and kept["data"] == {"k": "v"}
        cluster.check_alive()  # etcd, kwok and the new servers all running
        report.set(
            "control_plane_restart", {"from": start, "to": target, "version": cluster.server_version()}
        )
