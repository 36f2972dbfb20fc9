"""The Marathon scaler's metric contract: names and labels its daemon exports and its alert rules query.

Imported by orchestrator/services/marathon/telemetry.py (the exporter) and components/marathon_scaler.py (the
alert rules), so the two cannot drift apart.
"""
from __future__ import annotations

PREFIX = "orchestrator_marathon_scaler"
DECISIONS_TOTAL = f"{PREFIX}_decisions_total"              # counter: app, direction (up|down|none), reason
DESIRED_INSTANCES = f"{PREFIX}_desired_instances"          # gauge: app — the last decision's target
ERRORS_TOTAL = f"{PREFIX}_errors_total"                    # counter: loop (autoscale|heal|reconcile), kind
CYCLE_SECONDS = f"{PREFIX}_cycle_seconds"                  # histogram: loop
LAST_CYCLE_TIMESTAMP = f"{PREFIX}_last_cycle_timestamp_seconds"  # gauge: loop — a stuck loop stops moving it
HEAL_KILLS_TOTAL = f"{PREFIX}_heal_kills_total"            # counter: app, mode (replace|scale-false)
HEAL_BUDGET_EXHAUSTED_TOTAL = f"{PREFIX}_heal_budget_exhausted_total"  # counter: scope (app|cluster)
HEAL_CIRCUIT_OPEN = f"{PREFIX}_heal_circuit_open"          # gauge 0/1: many apps unhealthy at once
RECONCILE_CHANGES_TOTAL = f"{PREFIX}_reconcile_changes_total"  # counter: action (create|update|delete|skip-delete)
RECONCILE_DRIFT = f"{PREFIX}_reconcile_drift_apps"         # gauge: apps whose live definition drifted
ACTIVE = f"{PREFIX}_active"                                # gauge 0/1: this replica holds the lock

CYCLE_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METRICS_PORT = 9108
