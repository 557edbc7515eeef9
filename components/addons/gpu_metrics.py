"""What the DCGM exporter collects: its collectors file and the XID error window.

The exporter reads one collectors CSV (``DCGM field, Prometheus type, help`` per line); the chart
renders it from ``customMetrics`` into its ConfigMap ``exporter-metrics-config-map`` and mounts it at
the exporter's default collectors path, ``/etc/dcgm-exporter/default-counters.csv``. The list is
not additive: it replaces the chart's own. So it is the chart's default list (dcgm-exporter chart
4.8.3, ``templates/metrics-configmap.yaml``), field for field, plus ``DCGM_EXP_XID_ERRORS_COUNT``.

DCGM's ``DCGM_FI_DEV_XID_ERRORS`` holds only the last XID code: the same code twice in a row changes
nothing in it. The exporter's ``DCGM_EXP_XID_ERRORS_COUNT`` counts every XID event DCGM recorded for a
GPU in the last ``--xid-count-window-size`` milliseconds, one series per code (label ``xid``), and a
single 0-valued series without ``xid`` while there were none. ``GpuXidError`` reads it, so a repeat
of one code counts like any other error, and the alert clears one window after the last.

Pure data; ``addons.gpu`` puts it in the chart's values, ``addons.alerts`` reads the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

XID_COUNT = "DCGM_EXP_XID_ERRORS_COUNT"
FB_USED = "DCGM_FI_DEV_FB_USED"
FB_FREE = "DCGM_FI_DEV_FB_FREE"

# How long one XID error keeps counting (the exporter's default, stated so that the alert and the
# exporter agree). DCGM keeps the field's samples 600 s (the exporter's watch), the upper bound.
XID_WINDOW_MINUTES = 5
XID_WINDOW_ENV = "DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE"  # the --xid-count-window-size flag, in ms

# (field, Prometheus type, help): the chart's default list at 4.8.3, then the XID counter.
COLLECTORS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %)."),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    (FB_FREE, "gauge", "Framebuffer memory free (in MiB)."),
    (FB_USED, "gauge", "Framebuffer memory used (in MiB)."),
    (
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "gauge",
        "Total number of NVLink bandwidth counters for all lanes.",
    ),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status"),
    (
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for uncorrectable errors",
    ),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."),
    (
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "gauge",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
    ),
    (
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "gauge",
        "The rate of data transmitted over the PCIe bus - including both protocol headers and data "
        "payloads - in bytes per second.",
    ),
    (
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        "gauge",
        "The rate of data received over the PCIe bus - including both protocol headers and data "
        "payloads - in bytes per second.",
    ),
    # A count over a sliding window rises and falls: a gauge.
    (XID_COUNT, "gauge", "XID errors observed during the configured time window."),
)

# What the platform's GPU alerts read: a collectors list without them leaves the alerts blind.
ALERT_FIELDS = (XID_COUNT, FB_USED, FB_FREE)


def collectors_csv(rows: tuple[tuple[str, str, str], ...] = COLLECTORS) -> str:
    """The collectors file, one ``field, type, help`` line per row."""
    return "".join(f"{field}, {kind}, {help_text}\n" for field, kind, help_text in rows)


def collected_fields(csv: str) -> set[str]:
    """The fields a collectors file collects (comments and blank lines skipped), as the exporter reads
    it: the first of three comma-separated columns."""
    return {
        line.split(",")[0].strip()
        for line in csv.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def exporter_values() -> dict[str, Any]:
    """The dcgm-exporter chart's values that make it collect ``COLLECTORS`` with ``XID_WINDOW_MINUTES``."""
    return {
        "customMetrics": collectors_csv(),
        "extraEnv": [{"name": XID_WINDOW_ENV, "value": str(XID_WINDOW_MINUTES * 60 * 1000)}],
    }


def missing_alert_fields(values: Mapping[str, Any]) -> list[str]:
    """The fields the GPU alerts read that the chart's final values would not collect."""
    csv = values.get("customMetrics")
    collected = collected_fields(csv) if isinstance(csv, str) else set()
    return [field for field in ALERT_FIELDS if field not in collected]
