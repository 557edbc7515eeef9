"""What the DCGM exporter collects: the collectors file the chart mounts, as the exporter parses it."""

from __future__ import annotations

import csv
import io

from aiplatform.addons.gpu_metrics import (
    COLLECTORS,
    XID_COUNT,
    collected_fields,
    collectors_csv,
    exporter_values,
    missing_alert_fields,
)

# The fields dcgm-exporter chart 4.8.3 collects by default (templates/metrics-configmap.yaml).
CHART_DEFAULT_FIELDS = {
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
}


def test_the_collectors_keep_the_chart_defaults_and_add_the_xid_count():
    assert collected_fields(collectors_csv()) == CHART_DEFAULT_FIELDS | {XID_COUNT}
    assert len(COLLECTORS) == len(CHART_DEFAULT_FIELDS) + 1


def test_every_line_has_the_three_columns_the_exporter_requires():
    """The exporter refuses a line without exactly 3 comma-separated columns: a help text with a comma
    would stop it at start."""
    rows = list(csv.reader(io.StringIO(collectors_csv())))
    assert len(rows) == len(COLLECTORS)
    assert all(len(row) == 3 for row in rows)
    assert {row[1].strip() for row in rows} <= {"gauge", "counter"}


def test_collected_fields_skip_comments_and_blank_lines():
    text = (
        "# DCGM FIELD, type, help\n\nDCGM_FI_DEV_GPU_UTIL,  gauge, GPU utilization (in %).\n# X, gauge, h\n"
    )
    assert collected_fields(text) == {"DCGM_FI_DEV_GPU_UTIL"}


def test_the_chart_values_and_what_they_miss():
    values = exporter_values()
    assert missing_alert_fields(values) == []
    assert missing_alert_fields({}) == [XID_COUNT, "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"]
    assert missing_alert_fields({"customMetrics": "DCGM_FI_DEV_FB_USED, gauge, x\n"}) == [
        XID_COUNT,
        "DCGM_FI_DEV_FB_FREE",
    ]
