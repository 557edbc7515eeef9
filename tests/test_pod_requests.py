"""A pod's effective requests, per resource name, as the scheduler counts them."""

from decimal import Decimal

from aiplatform.pod_requests import effective_requests, manifest_requests


def amounts(**values: str) -> dict[str, Decimal]:
    return {k.replace("_", "."): Decimal(v) for k, v in values.items()}


def test_the_larger_of_the_init_steps_and_the_running_pod():
    sidecar = (amounts(cpu="0.1"), True)
    fetch = (amounts(cpu="1", memory="100"), False)
    server = amounts(cpu="2", memory="50")
    assert effective_requests([server], [sidecar, fetch]) == amounts(cpu="2.1", memory="100")
    # A sidecar started after an init step does not add to it.
    assert effective_requests([amounts(cpu="0.5")], [fetch, sidecar]) == amounts(cpu="1", memory="100")
    # One started before it does.
    assert effective_requests([amounts(cpu="0.5")], [sidecar, fetch]) == amounts(cpu="1.1", memory="100")


def test_every_resource_name_counts_gpus_included():
    spec = {
        "initContainers": [
            {"name": "logs", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
            {"name": "fetch", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
        ],
        "containers": [
            {"name": "server", "resources": {"requests": {"cpu": "2", "nvidia.com/gpu": "4"}}},
            {"name": "no-requests"},
        ],
    }
    assert manifest_requests(spec) == {
        "cpu": Decimal("2.1"),
        "memory": Decimal(2**30),
        "nvidia.com/gpu": Decimal(4),
    }
    assert manifest_requests({}) == {}
