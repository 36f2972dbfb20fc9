"""The probe's and the exporters' own metric names and ports (docs/probe.md): the alert rules and dashboards
import these, the daemons export them."""
from __future__ import annotations

PROBE_METRICS_PORT = 9110
EXPORTER_MESOS_PORT = 9105     # the port mesos_exporter used: scrape configs keep working
EXPORTER_MARATHON_PORT = 9111

# Probe cost and health (counters end in _total as exposed).
PROBE_COLLECT_SECONDS = "orchestrator_probe_collect_seconds"               # histogram
PROBE_COLLECT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBE_CPU_SECONDS = "orchestrator_probe_cpu_seconds_total"                 # counter: the probe's own CPU
PROBE_RSS_BYTES = "orchestrator_probe_resident_memory_bytes"               # gauge
PROBE_REPORT_BYTES = "orchestrator_probe_report_bytes"                     # gauge, label kind=full|delta (gzip)
PROBE_REPORTS = "orchestrator_probe_reports_total"                         # counter, label result
PROBE_REPORTS_DROPPED = "orchestrator_probe_reports_dropped_total"         # counter: buffer overflow
PROBE_SKIPPED_PROCESSES = "orchestrator_probe_skipped_processes_total"     # counter: exited or denied
PROBE_SOURCE_ERRORS = "orchestrator_probe_source_errors_total"             # counter, label source
PROBE_OBJECTS = "orchestrator_probe_objects"                               # gauge, label kind
PROBE_REPLICAS = "orchestrator_probe_api_replicas"                         # gauge: API addresses resolved

# The seed's targets, used by the ProbeCostHigh alert: < 5 % of one core, < 100 MB.
PROBE_CPU_TARGET_CORES = 0.05
PROBE_RSS_TARGET_BYTES = 100 * 1024 * 1024

# Exporters: per target health, like Prometheus' own `up`.
EXPORTER_UP = "orchestrator_exporter_target_up"                          # gauge, labels exporter, target
EXPORTER_SCRAPE_ERRORS = "orchestrator_exporter_scrape_errors_total"     # counter, labels exporter, target
EXPORTER_SCRAPE_SECONDS = "orchestrator_exporter_scrape_duration_seconds"  # gauge, label exporter
