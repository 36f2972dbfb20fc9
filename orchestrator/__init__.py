"""orchestrator: offline render/check of the Pulumi program, and the platform's operating services."""
