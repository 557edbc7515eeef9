"""The benchmark's generator and floor, small and fast (the real sizes run with `make bench`)."""

from __future__ import annotations

from collections import Counter

from tools.bench import bench_config, main, measure_floor, render, settings_of, targets


def test_generated_config_validates_with_unique_names_and_hosts():
    config = bench_config(25)
    settings = settings_of(config)
    inference = settings.workloads.inference
    assert len(inference) == 25
    assert len({w.name for w in inference}) == 25
    assert len({w.ingress.host for w in inference}) == 25
    serving = next(n for n in settings.namespaces if n.name == "ml-serving")
    assert serving.quota.pods >= 25 * 10 and serving.quota.gpus >= 25 * 10  # every copy at maxReplicas


def test_one_service_is_the_template():
    (only,) = settings_of(bench_config(1)).workloads.inference
    assert only.name == "llama-inference"


def test_floor_registers_the_requested_count():
    result = measure_floor(12, warm=False)
    assert result["resources"] == 12 and result["wall_s"] > 0


def test_targets_and_table():
    def row(services, resources, wall, floor_wall, rss, floor_rss):
        return {
            "services": services,
            "resources": resources,
            "program": {"wall_s": wall, "peak_rss_mib": rss},
            "floor": {"wall_s": floor_wall, "peak_rss_mib": floor_rss},
            "time_ratio": round(wall / floor_wall, 2),
            "memory_ratio": round(rss / floor_rss, 2),
            "program_ms_per_resource": 1000 * wall / resources,
            "floor_ms_per_resource": 1000 * floor_wall / resources,
        }

    rows = [row(10, 100, 1.0, 0.8, 100, 90), row(500, 5000, 60.0, 38.0, 300, 100)]
    found = {t["target"].split()[0]: t["met"] for t in targets(rows)}
    assert found == {"time": False, "time/resource": True, "peak": False}
    assert "MISSED" in render({"rows": rows, "targets": targets(rows)})


def test_the_largest_size_spreads_its_gpu_servers_over_groups_within_the_eks_limit():
    config = bench_config(500)
    settings = settings_of(config)  # validates: no group over maxSize 1000, every server fits
    groups = {g.name: g.scaling.maxSize for g in settings.nodeGroups.gpu}
    assert groups["gpu-inference"] == groups["gpu-inference-2"] == 501
    placed = Counter(w.gpu.nodeGroup for w in settings.workloads.inference)
    assert placed == {"gpu-inference": 250, "gpu-inference-2": 250}


def test_a_generated_stack_the_config_refuses_is_a_message_and_exit_2(capsys):
    # 1000 servers always run 2000 GPUs: more than a namespace's GPU quota may hold (1024).
    assert main(["--sizes", "1", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the stack generated for 1000 services: invalid stack configuration:\n")
    assert "aiplatform:namespaces[0].quota.gpus" in err and "Traceback" not in err
