"""The local control plane restarts at another Kubernetes minor on the same etcd data: the base of an
upgrade scenario. ``AIPLATFORM_E2E_RESTART_FROM`` and ``AIPLATFORM_E2E_RESTART_TO`` name the minors
(default: the committed stacks' lowest minor, restarted at itself, which the stacks' runs build anyway).
"""

from __future__ import annotations

import os
import sys

from tools.e2e.cluster import LocalCluster
from tools.e2e.harness import OUT
from tools.e2e.kubeapi import wait_for
from tools.e2e.stacks import committed_stack_minors
from tools.e2e.toolchain import (
    TOOLS,
    control_plane,
    ensure_control_plane,
    ensure_one,
    kwok_stage_dir,
)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _served_minor(cluster: LocalCluster) -> str:
    version = cluster.server_version()
    return f"{version['major']}.{version['minor'].rstrip('+')}"


def test_restart_at_another_minor_keeps_the_data(report):
    lowest = min(committed_stack_minors(), key=lambda m: tuple(map(int, m.split("."))))
    start = os.environ.get("AIPLATFORM_E2E_RESTART_FROM", lowest)
    target = os.environ.get("AIPLATFORM_E2E_RESTART_TO", start)
    found = {t.name: ensure_one(t, _log) for t in TOOLS if t.name in ("etcd", "kwok")}
    found |= ensure_control_plane(start, _log) | ensure_control_plane(target, _log)
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
        # The new controller-manager works: it gives a namespace made now its default service account.
        cluster.api.request("POST", "/api/v1/namespaces", {"metadata": {"name": "after-restart"}})
        wait_for(
            lambda: cluster.api.get("ServiceAccount", "default", "after-restart"),
            timeout=60,
            what="the default service account of a namespace made after the restart",
        )
        cluster.check_alive()  # etcd, kwok and the new servers all running
        report.set(
            "control_plane_restart", {"from": start, "to": target, "version": cluster.server_version()}
        )
