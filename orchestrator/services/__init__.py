"""Long-running daemons and their commands. Never imports Pulumi or the platform (components/)."""
