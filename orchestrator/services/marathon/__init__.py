"""The Marathon scaler: autoscale (HPA semantics), heal (with guard rails), reconcile (apps as code).

`orchestrator marathon autoscale|heal|reconcile|run|validate`; docs/marathon-scaler.md.
"""
