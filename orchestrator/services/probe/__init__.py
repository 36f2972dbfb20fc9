"""The node probe (`orchestrator probe`): host, processes, containers from cgroups, TCP connections."""
