"""Settings of the xmpp_ofc/rate_limiter NApp.

Every setting can be overridden by an environment variable named
``XMPP_OFC_RATE_LIMITER_<NAME>`` (e.g. ``XMPP_OFC_RATE_LIMITER_POLL_INTERVAL=2``),
parsed to the type of its default; see ``xmpp_ofc.settings_env``.

The policy settings (threshold to meter burst) are the *start-up defaults* of
``LimiterSettings``, validated together when the NApp starts (an invalid value
stops it with a message naming the setting). They can be changed at runtime
over REST (PATCH ``v1/settings``); the changed values are stored in SQLite and
win over this file at the next start. Delete the database file (or PATCH back)
to return to these defaults. README.md explains each one, including why a
flood needs BOTH thresholds (heavy receivers send many payload-free ACKs).
"""

from xmpp_ofc.settings_env import env_setting

ENV_PREFIX = "XMPP_OFC_RATE_LIMITER_"

# --- policy (start-up defaults of LimiterSettings, changeable over REST) -------------

#: Packets a minute, client -> server, above which a client may be flooding.
THRESHOLD_PPM: int = env_setting(ENV_PREFIX, "THRESHOLD_PPM", 100)

#: TCP payload bytes a minute that must ALSO be exceeded (0: packets only).
PAYLOAD_THRESHOLD_BPM: int = env_setting(ENV_PREFIX, "PAYLOAD_THRESHOLD_BPM", 6000)

#: Seconds between two flow-stats polls of a switch (the rate window).
POLL_INTERVAL: float = env_setting(ENV_PREFIX, "POLL_INTERVAL", 10.0)

#: Seconds a flooding client is blocked (the drop flow's hard timeout).
BLOCK_DURATION: int = env_setting(ENV_PREFIX, "BLOCK_DURATION", 60)

#: Seconds without packets after which the switch removes a monitor flow.
MONITOR_IDLE_TIMEOUT: int = env_setting(ENV_PREFIX, "MONITOR_IDLE_TIMEOUT", 120)

#: Comma-separated XMPP server ports to capture (client-to-server).
XMPP_PORTS: str = env_setting(ENV_PREFIX, "XMPP_PORTS", "5222")

#: Comma-separated addresses/CIDRs that are never blocked.
WHITELIST: str = env_setting(ENV_PREFIX, "WHITELIST", "")

#: block | meter | monitor.
MODE: str = env_setting(ENV_PREFIX, "MODE", "block")

#: Also sum each source address's connections and block the address as a whole.
PER_IP_AGGREGATE: bool = env_setting(ENV_PREFIX, "PER_IP_AGGREGATE", False)

#: Packets a minute of one address over all its connections (PER_IP_AGGREGATE).
AGGREGATE_THRESHOLD_PPM: int = env_setting(ENV_PREFIX, "AGGREGATE_THRESHOLD_PPM", 1000)

#: Meter mode: packets/s each client may send before the switch drops.
METER_RATE_PPS: int = env_setting(ENV_PREFIX, "METER_RATE_PPS", 2)

#: Meter mode: burst size in packets.
METER_BURST_PACKETS: int = env_setting(ENV_PREFIX, "METER_BURST_PACKETS", 50)

# --- capture-path bounds (start-up only; README "Capture-path bounds", capture_bounds.py) ---

#: Packet-ins/s (and burst, packets) the capture meter lets through per switch, where
#: the switch has OpenFlow meters.
CAPTURE_METER_RATE_PPS: int = env_setting(ENV_PREFIX, "CAPTURE_METER_RATE_PPS", 200)
CAPTURE_METER_BURST: int = env_setting(ENV_PREFIX, "CAPTURE_METER_BURST", 100)

#: Monitored connections at most per switch and per source address (whitelisted
#: addresses: no per-address bound). Past a bound a connection is not monitored.
MAX_MONITORED_PER_SWITCH: int = env_setting(ENV_PREFIX, "MAX_MONITORED_PER_SWITCH", 50_000)
MAX_MONITORED_PER_ADDRESS: int = env_setting(ENV_PREFIX, "MAX_MONITORED_PER_ADDRESS", 64)

# --- the shell ------------------------------------------------------------------------

#: SQLite file of settings, blocks and history; empty: Kytos' var dir
#: (``$VIRTUAL_ENV/var/lib/kytos/xmpp_ofc/rate_limiter.sqlite``).
DB_PATH: str = env_setting(ENV_PREFIX, "DB_PATH", "")

#: Seconds between two runs of the timer that sends the polls that are due. Each
#: switch is still polled every POLL_INTERVAL; this is only the timer's granularity.
TIMER_INTERVAL: float = env_setting(ENV_PREFIX, "TIMER_INTERVAL", 1.0)

#: Seconds between two sweeps for blocks whose FLOW_REMOVED was lost and clients
#: no poll reports any more.
SWEEP_INTERVAL: float = env_setting(ENV_PREFIX, "SWEEP_INTERVAL", 5.0)

#: Block/unblock/flag events kept in memory and in SQLite (GET v1/events).
HISTORY_LIMIT: int = env_setting(ENV_PREFIX, "HISTORY_LIMIT", 1000)
