from tests.support.marathon import (  # noqa: F401 - fixtures
    fake_marathon,
    fake_marathon_realtime,
    marathon_client,
    sim_clock,
)
from tests.support.prometheus import prometheus  # noqa: F401 - fixture
