"""The README's configuration reference documents every setting and every secret key."""
from pathlib import Path

from pydantic import BaseModel

from components.settings import SECRET_KEYS, PlatformSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel) and not name.endswith("resources"):
            keys += leaf_keys(type(default), f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_setting_and_secret_is_in_the_config_reference():
    keys = leaf_keys(PlatformSettings)
    assert len(keys) > 60
    missing = [k for k in keys + sorted(SECRET_KEYS) if f"`{k}`" not in README]
    assert missing == []
