"""The upgrade scenario's stack at the minor before: its pins derive from the version calendar."""

from __future__ import annotations

import yaml

from aiplatform.kubernetes_versions import BY_VERSION
from tests.stacks import stack_config
from tools.e2e.stacks import PROJECT_ROOT
from tools.e2e.upgrade import config_key, current_pins, previous_minor, version_pins, write_stack_at


def test_the_minor_before_is_the_calendars_previous_row():
    assert previous_minor("1.36") == "1.35"
    assert previous_minor("1.34") == "1.33"


def test_the_stack_at_the_minor_before_takes_that_minors_pins_and_keeps_the_rest(tmp_path):
    committed = PROJECT_ROOT / "Pulumi.dev.yaml"
    written = write_stack_at(committed, "1.35", tmp_path / "Pulumi.upgrade.yaml")
    before, after = (
        yaml.safe_load(committed.read_text())["config"],
        yaml.safe_load(written.read_text())["config"],
    )
    cluster = after["aiplatform:cluster"]
    assert cluster["kubernetesVersion"] == "1.35"
    assert cluster["addons"]["kube-proxy"] == BY_VERSION["1.35"].addons["kube-proxy"] != "v1.36.0-eksbuild.14"
    assert set(cluster["addons"]) == set(before["aiplatform:cluster"]["addons"])
    assert after["aiplatform:charts"]["clusterAutoscaler"] == BY_VERSION["1.35"].autoscaler_chart
    assert {k: v for k, v in after.items() if k not in ("aiplatform:cluster", "aiplatform:charts")} == {
        k: v for k, v in before.items() if k not in ("aiplatform:cluster", "aiplatform:charts")
    }


def test_the_committed_dev_stack_pins_its_minor_as_the_calendar_says():
    config = stack_config("dev")
    minor = config["aiplatform:cluster"]["kubernetesVersion"]
    pins = version_pins(config, minor)
    assert current_pins(config, list(pins)) == pins


def test_config_keys_quote_what_a_path_cannot_hold():
    assert config_key(("aiplatform:cluster", "kubernetesVersion")) == "aiplatform:cluster.kubernetesVersion"
    assert (
        config_key(("aiplatform:cluster", "addons", "kube-proxy"))
        == 'aiplatform:cluster.addons["kube-proxy"]'
    )
