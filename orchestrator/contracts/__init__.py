"""What the platform (IaC) side and the services share: metric names, ports, tier ids, schemas.

Imports nothing of ours and nothing heavier than pydantic and prometheus_client: never Pulumi.
"""
