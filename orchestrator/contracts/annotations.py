"""Annotation keys the platform's objects carry and the toolchain's checks read (no imports: a contract)."""
from __future__ import annotations

# On a pod template: comma-separated names of Secrets issued outside the program (e.g. by cert-manager).
# The render's reference check accepts exactly these as absent from the render; every other Secret a pod
# uses must be rendered (the credentials tier).
EXTERNAL_SECRETS = "orchestrator.io/external-secrets"
