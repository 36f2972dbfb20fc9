"""The Pulumi program: stack config → typed settings → platform → stack outputs."""
import pulumi

from components.platform import Platform, PlatformArgs
from components.settings import settings_from_pulumi

platform = Platform("orchestrator", PlatformArgs(settings_from_pulumi()))
for key, value in platform.outputs.items():
    pulumi.export(key, value)
