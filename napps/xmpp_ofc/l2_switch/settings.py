"""Settings of the xmpp_ofc/l2_switch NApp.

Every setting can be overridden by an environment variable named
``XMPP_OFC_L2_SWITCH_<NAME>`` (e.g. ``XMPP_OFC_L2_SWITCH_IDLE_TIMEOUT=5``), parsed to
the type of its default; see ``xmpp_ofc.settings_env``.  The values are validated
together by ``LearningSettings`` when the NApp starts: an invalid combination stops
it with a message naming the setting.
"""

from xmpp_ofc.settings_env import env_setting

ENV_PREFIX = "XMPP_OFC_L2_SWITCH_"

#: Seconds without traffic after which the switch removes a forwarding flow.
IDLE_TIMEOUT: int = env_setting(ENV_PREFIX, "IDLE_TIMEOUT", 10)

#: Seconds after which the switch removes a forwarding flow in any case, so a host
#: that moved silently is relearned at the latest then.
HARD_TIMEOUT: int = env_setting(ENV_PREFIX, "HARD_TIMEOUT", 30)

#: Priority of the forwarding flows in table 1 (the table-miss flow has 0).
FLOW_PRIORITY: int = env_setting(ENV_PREFIX, "FLOW_PRIORITY", 100)

#: Seconds a learned MAC stays in the controller's table without being seen (802.1D: 300).
MAC_AGING: float = env_setting(ENV_PREFIX, "MAC_AGING", 300.0)

#: Seconds between two aging sweeps of every switch's MAC table.
AGING_INTERVAL: float = env_setting(ENV_PREFIX, "AGING_INTERVAL", 10.0)

#: MACs learned per switch at most; past it new MACs are refused, counted and logged.
MAX_MACS_PER_SWITCH: int = env_setting(ENV_PREFIX, "MAX_MACS_PER_SWITCH", 4096)

#: MACs learned per port at most (a MAC flood on one port cannot fill the switch's table).
MAX_MACS_PER_PORT: int = env_setting(ENV_PREFIX, "MAX_MACS_PER_PORT", 1024)
