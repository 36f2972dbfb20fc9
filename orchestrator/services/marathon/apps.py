"""Marathon apps as code for the scaler: the loaders live in orchestrator/apps_as_code.py (shared with the render)."""
from __future__ import annotations

from orchestrator.apps_as_code import (  # noqa: F401 - re-exported
    CONFIGMAP_KEY,
    AppSpec,
    configmap_data,
    load_apps,
    read_apps_file,
    validate_app,
)
