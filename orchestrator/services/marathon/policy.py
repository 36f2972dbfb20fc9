"""Autoscaling and healing policies: the models, where they come from, and the operators' overrides.

Sources, in order (the first that declares a field for an app wins, field by field, for whole sections):

1. **Operator overrides** (`bounds`, `paused`) made through the API (`PolicyStore.update_override`) — what an
   operator does instead of scaling an autoscaled app by hand (a manual scale would be undone by the next
   cycle). Kept in the scaler's state store (a znode), so every replica and restart sees them.
2. **Stack config** (`orchestrator:marathonScaler.policies`, rendered into the scaler's config file): the
   platform team's word. It wins over labels because labels are editable by whoever can deploy the app.
3. **Marathon app labels** (tendrilinc-style, so Marathon-native users need no repository change)::

       "orchestrator.autoscale.min": "2", "orchestrator.autoscale.max": "20",
       "orchestrator.autoscale.metric": "cpu",  "orchestrator.autoscale.target": "0.6"

   Optional: `orchestrator.autoscale.metric-type` (`average`|`total`), `.tolerance`,
   `.scale-down-window` / `.scale-down-drop-window` / `.scale-up-window` (seconds), `.heal` (`true` enables the healer for the app).

An app with no policy from any source is never touched.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from orchestrator.contracts.marathon_scaler import (  # noqa: F401 - re-exported: the models live in the contract
    DEFAULT_DOWN,
    DEFAULT_UP,
    LABEL_PREFIX,
    MARATHON_DOWN,
    NAMED_METRICS,
    AutoscalePolicy,
    Behavior,
    HealPolicy,
    Override,
    RatePolicy,
    ScalerConfig,
)
from orchestrator.errors import InputError


def policy_from_labels(app_id: str, labels: dict[str, str]) -> AutoscalePolicy | None:
    """An AutoscalePolicy from `orchestrator.autoscale.*` labels, None if the app has none.

    A label set that is present but invalid raises InputError naming the app and label: the scaler reports it
    as a decision with reason `invalid-policy` and leaves the app alone."""
    ours = {k[len(LABEL_PREFIX):]: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
    ours.pop("heal", None)
    if not ours:
        return None
    names = {"min": "min_instances", "max": "max_instances", "metric": "metric", "target": "target",
             "metric-type": "metric_type", "tolerance": "tolerance", "paused": "paused"}
    data: dict[str, Any] = {}
    for key, value in ours.items():
        if key in names:
            data[names[key]] = value
        elif key in ("scale-down-window", "scale-down-drop-window", "scale-up-window"):
            data[key] = value
        else:
            raise InputError(f"app {app_id}: unknown label {LABEL_PREFIX}{key}")
    try:
        down = {field: int(data.pop(label)) for label, field in (("scale-down-window", "stabilization_seconds"),
                ("scale-down-drop-window", "drop_window_seconds")) if label in data}
        if down:  # validated: model_copy does not validate, the Behavior built from its dump does
            data["scale_down"] = Behavior.model_validate({**MARATHON_DOWN.model_dump(), **down})
        if "scale-up-window" in data:
            data["scale_up"] = Behavior.model_validate({**DEFAULT_UP.model_dump(),
                                                        "stabilization_seconds": int(data.pop("scale-up-window"))})
        return AutoscalePolicy.model_validate(data)
    except (ValidationError, ValueError) as exc:
        raise InputError(f"app {app_id}: labels {LABEL_PREFIX}*: {_first_error(exc)}") from None


def heal_from_labels(labels: dict[str, str]) -> bool:
    return labels.get(LABEL_PREFIX + "heal", "").lower() == "true"


def apply_override(policy: AutoscalePolicy, override: Override | None) -> AutoscalePolicy:
    if override is None:
        return policy
    update: dict[str, Any] = {k: v for k, v in override.model_dump().items() if v is not None}
    lo = update.get("min_instances", policy.min_instances)
    hi = update.get("max_instances", policy.max_instances)
    if lo > hi:  # an override that crosses the configured bound moves the other bound (the operator's intent wins)
        if "min_instances" in update:
            update["max_instances"] = lo
        else:
            update["min_instances"] = hi
    return policy.model_copy(update=update)


def load_config(path: str | None) -> ScalerConfig:
    """Read the scaler config (YAML or JSON). InputError names the file and the key."""
    if not path:
        return ScalerConfig()
    from pathlib import Path

    from orchestrator import strict_yaml

    # Strict: size-bounded UTF-8, no duplicate keys, no alias bombs (InputError naming file and line).
    raw = strict_yaml.load_file(Path(path)) or {}
    try:
        normalised = dict(raw)
        for section in ("policies", "heal"):
            if isinstance(normalised.get(section), dict):
                normalised[section] = {_norm_id(path, section, k): v for k, v in normalised[section].items()}
        return ScalerConfig.model_validate(normalised)
    except (ValidationError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: {_first_error(exc)}") from None


def _norm_id(path: str, section: str, app_id: str) -> str:
    from orchestrator.clients.marathon import normalize_app_id

    try:
        return normalize_app_id(str(app_id))
    except InputError as exc:
        raise InputError(f"{path}: {section}: {exc}") from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else err["msg"]
    return str(exc)
