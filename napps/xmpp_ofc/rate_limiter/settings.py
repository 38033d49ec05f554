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
policy (token buckets in ejabberd/prosody terms, fail2ban-style escalation).
"""

from xmpp_ofc.settings_env import env_setting

ENV_PREFIX = "XMPP_OFC_RATE_LIMITER_"

# --- policy (start-up defaults of LimiterSettings, changeable over REST) -------------

#: Payload bytes/s a connection may send, sustained, and its burst (ejabberd's
#: ``normal`` shaper: 3000 B/s, 20 kB).
PAYLOAD_RATE_BPS: int = env_setting(ENV_PREFIX, "PAYLOAD_RATE_BPS", 3000)
PAYLOAD_BURST_BYTES: int = env_setting(ENV_PREFIX, "PAYLOAD_BURST_BYTES", 20000)

#: Messages/s (estimated from data packets) a connection may send, and its burst.
MESSAGE_RATE_PER_S: float = env_setting(ENV_PREFIX, "MESSAGE_RATE_PER_S", 5.0)
MESSAGE_BURST: int = env_setting(ENV_PREFIX, "MESSAGE_BURST", 10)

#: Seconds a bucket must stay empty before the client is stopped.
SUSTAIN: float = env_setting(ENV_PREFIX, "SUSTAIN", 2.0)

#: Seconds between two flow-stats polls of a switch (longer for switches whose
#: replies cost more than POLL_CPU_BUDGET of a core to judge).
POLL_INTERVAL: float = env_setting(ENV_PREFIX, "POLL_INTERVAL", 1.0)

#: Seconds the first automatic block of an address lasts; each further offence
#: within OFFENCE_WINDOW doubles it, up to BLOCK_MAX (fail2ban's bantime.increment).
BLOCK_DURATION: int = env_setting(ENV_PREFIX, "BLOCK_DURATION", 60)
BLOCK_MAX: int = env_setting(ENV_PREFIX, "BLOCK_MAX", 3600)
OFFENCE_WINDOW: int = env_setting(ENV_PREFIX, "OFFENCE_WINDOW", 3600)

#: From this offence of an address on, the whole address is blocked (0: never).
ADDRESS_BLOCK_AFTER: int = env_setting(ENV_PREFIX, "ADDRESS_BLOCK_AFTER", 2)

#: Seconds without packets after which the switch removes a monitor flow.
MONITOR_IDLE_TIMEOUT: int = env_setting(ENV_PREFIX, "MONITOR_IDLE_TIMEOUT", 120)

#: Comma-separated XMPP server ports to capture (client-to-server).
XMPP_PORTS: str = env_setting(ENV_PREFIX, "XMPP_PORTS", "5222")

#: Comma-separated addresses/CIDRs that are never blocked.
WHITELIST: str = env_setting(ENV_PREFIX, "WHITELIST", "")

#: Comma-separated addresses of the protected XMPP server itself: never blocked, by
#: hand (400) or automatically. Destinations of capture packet-ins are learned on top.
PROTECTED_ADDRESSES: str = env_setting(ENV_PREFIX, "PROTECTED_ADDRESSES", "")

#: block | meter | monitor.
MODE: str = env_setting(ENV_PREFIX, "MODE", "block")

#: Also sum each source address's connections and block the address as a whole.
PER_IP_AGGREGATE: bool = env_setting(ENV_PREFIX, "PER_IP_AGGREGATE", False)

#: Messages/s of one address over all its connections (PER_IP_AGGREGATE).
AGGREGATE_MESSAGES_PER_S: float = env_setting(ENV_PREFIX, "AGGREGATE_MESSAGES_PER_S", 50.0)

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

#: Share of one core the polls of one switch may take (start-up only): at 50k
#: monitored clients a reply takes ~0.8 s to judge, so that switch is polled every
#: ~3 s instead of every POLL_INTERVAL.
POLL_CPU_BUDGET: float = env_setting(ENV_PREFIX, "POLL_CPU_BUDGET", 0.25)

#: SQLite file of settings, blocks and history; empty: Kytos' var dir
#: (``$VIRTUAL_ENV/var/lib/kytos/xmpp_ofc/rate_limiter.sqlite``).
DB_PATH: str = env_setting(ENV_PREFIX, "DB_PATH", "")

#: Where state lives instead of the SQLite file: ``postgresql://user@host:port/db``
#: (PostgreSQL, shared by several controllers; ``postgres_store.py``). Empty: SQLite.
STORE_URL: str = env_setting(ENV_PREFIX, "STORE_URL", "")

#: Seconds between two runs of the timer that sends the polls that are due. Each
#: switch is still polled every POLL_INTERVAL; this is only the timer's granularity.
TIMER_INTERVAL: float = env_setting(ENV_PREFIX, "TIMER_INTERVAL", 1.0)

#: Seconds between two sweeps for blocks whose FLOW_REMOVED was lost and clients
#: no poll reports any more.
SWEEP_INTERVAL: float = env_setting(ENV_PREFIX, "SWEEP_INTERVAL", 5.0)

#: Block/unblock/flag events kept in memory and in SQLite (GET v1/events).
HISTORY_LIMIT: int = env_setting(ENV_PREFIX, "HISTORY_LIMIT", 1000)
