"""Settings of the xmpp_ofc/dispatcher NApp.

Every setting can be overridden by an environment variable named
``XMPP_OFC_DISPATCHER_<NAME>`` (e.g. ``XMPP_OFC_DISPATCHER_DISABLED_MODULES=rate_limiter``),
parsed to the type of its default; see ``xmpp_ofc.settings_env``.
"""

from xmpp_ofc.settings_env import env_setting

ENV_PREFIX = "XMPP_OFC_DISPATCHER_"

#: Comma-separated modules that start disabled on every switch (an operator enables
#: them per switch over REST).  Empty: every registered module starts enabled.
DISABLED_MODULES: str = env_setting(ENV_PREFIX, "DISABLED_MODULES", "")

#: Count OpenFlow messages in and out per switch and type (inline, one short lock
#: per message).  Off saves that lock on every message.
COUNT_MESSAGES: bool = env_setting(ENV_PREFIX, "COUNT_MESSAGES", True)

#: Capture packet-ins (the rate limiter's, one per new XMPP connection) handled per
#: switch: sustained per second and burst. The excess is shed before decoding and
#: counted (``xmpp_ofc_packet_ins_shed_total``), so a connection flood cannot starve
#: L2 learning or other switches. 200/s matches the capture meter the rate limiter
#: puts in the switch where meters exist (README "Capture-path bounds"); the burst of
#: 400 admits a login storm of 50 clients (a SYN and a few packets each) whole.
CAPTURE_PACKET_IN_RATE: float = env_setting(ENV_PREFIX, "CAPTURE_PACKET_IN_RATE", 200.0)
CAPTURE_PACKET_IN_BURST: int = env_setting(ENV_PREFIX, "CAPTURE_PACKET_IN_BURST", 400)
#: A packet-in older than this (seconds since of_core parsed it) when the dispatcher
#: gets to it is dropped undecoded and counted (``staleness.py``): a flood's backlog is
#: shed, not worked through. 0 never sheds.
PACKET_IN_MAX_AGE_S: float = env_setting(ENV_PREFIX, "PACKET_IN_MAX_AGE_S", 2.0)

# --- metrics and dashboard (README "Metrics and dashboards") ---------------------------------

#: Seconds between two samples of the message totals for the dashboard's chart
#: (GET v1/messages/history), and how many samples are kept (90 x 10 s = 15 min).
HISTORY_INTERVAL: float = env_setting(ENV_PREFIX, "HISTORY_INTERVAL", 10.0)
HISTORY_SIZE: int = env_setting(ENV_PREFIX, "HISTORY_SIZE", 90)

#: Also serve the Prometheus metrics on their own HTTP port (0: off; they are always
#: at GET /api/xmpp_ofc/dispatcher/v1/metrics), listening on METRICS_ADDRESS.
METRICS_PORT: int = env_setting(ENV_PREFIX, "METRICS_PORT", 0)
METRICS_ADDRESS: str = env_setting(ENV_PREFIX, "METRICS_ADDRESS", "127.0.0.1")

#: Push every metric to Graphite (plaintext protocol, TCP) every GRAPHITE_INTERVAL
#: seconds, under GRAPHITE_PREFIX.  Empty host: no push (the default).
GRAPHITE_HOST: str = env_setting(ENV_PREFIX, "GRAPHITE_HOST", "")
GRAPHITE_PORT: int = env_setting(ENV_PREFIX, "GRAPHITE_PORT", 2003)
GRAPHITE_PREFIX: str = env_setting(ENV_PREFIX, "GRAPHITE_PREFIX", "xmpp_ofc")
GRAPHITE_INTERVAL: float = env_setting(ENV_PREFIX, "GRAPHITE_INTERVAL", 10.0)
