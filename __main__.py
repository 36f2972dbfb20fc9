"""The Pulumi program: stack config → typed settings → platform → stack outputs."""
import pulumi

from components.platform import SCOPE_CONFIG_KEY, SCOPE_CONFIG_NAMESPACE, Platform, PlatformArgs, scope_from_config
from components.settings import settings_from_pulumi

# The scope is an explicit input: unset for `pulumi up`, "tree" when `orchestrator render` runs the program.
scope = scope_from_config(pulumi.Config(SCOPE_CONFIG_NAMESPACE).get(SCOPE_CONFIG_KEY))
platform = Platform("orchestrator", PlatformArgs(settings_from_pulumi(), scope))
for key, value in platform.outputs.items():
    pulumi.export(key, value)
