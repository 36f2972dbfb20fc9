"""Prometheus exporters of Mesos and Marathon (`orchestrator exporter ...`): fresh series at every scrape."""
