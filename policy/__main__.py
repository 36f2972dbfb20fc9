"""Entry point the Pulumi CLI runs for `--policy-pack policy`. Constructing PolicyPack starts the
analyzer's gRPC server and blocks: tests import `policy.rules` instead."""
from pulumi_policy import EnforcementLevel, PolicyPack

try:
    from rules import POLICIES  # run by the CLI from this directory
except ImportError:  # pragma: no cover - imported as a package
    from policy.rules import POLICIES

PolicyPack(name="orchestrator-policy", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
