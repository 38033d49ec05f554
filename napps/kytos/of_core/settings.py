"""Settings of the kytos/of_core NApp.

Every setting can be overridden by an environment variable named
``KYTOS_OF_CORE_<NAME>`` (e.g. ``KYTOS_OF_CORE_ECHO_INTERVAL=0.5``), parsed
to the type of its default; see ``xmpp_ofc.settings_env``.
"""

from xmpp_ofc.settings_env import env_setting

ENV_PREFIX = "KYTOS_OF_CORE_"

#: Seconds between two flow-stats/port-stats polls of every enabled switch
#: (upstream: 60).  The poll's replies refresh ``switch.flows`` and emit
#: ``kytos/of_core.flow_stats.received`` / ``kytos/of_core.port_stats``.
STATS_INTERVAL: float = env_setting(ENV_PREFIX, "STATS_INTERVAL", 60.0)

#: Seconds between two ECHO_REQUESTs we send to each connected switch.
ECHO_INTERVAL: float = env_setting(ENV_PREFIX, "ECHO_INTERVAL", 5.0)

#: A connection that has completed no message for this many seconds is closed
#: and its switch reported with ``kytos/of_core.switch.disconnected``.  Bytes
#: alone do not count (a peer trickling a byte a second is closed too).  Must be
#: larger than ECHO_INTERVAL, since echo replies keep a quiet switch alive.
DEAD_AFTER: float = env_setting(ENV_PREFIX, "DEAD_AFTER", 15.0)

#: A connection that leaves one of our ECHO_REQUESTs unanswered this long is
#: closed, even if it keeps sending other messages.
ECHO_TIMEOUT: float = env_setting(ENV_PREFIX, "ECHO_TIMEOUT", 10.0)

#: When a second connection claims the dpid of a connected switch, the switch
#: is sent an ECHO_REQUEST and has this many seconds to answer: if it does, the
#: newcomer is refused; if not, the old connection is closed and the newcomer
#: takes over (README, "Switch identity").
IDENTITY_ECHO_TIMEOUT: float = env_setting(ENV_PREFIX, "IDENTITY_ECHO_TIMEOUT", 2.0)

#: Bytes queued for a connection that does not read (the asyncio transport's
#: write buffer).  A send that would go past it closes the connection: a peer
#: that floods packet-ins and never reads our replies cannot grow memory.
MAX_OUTPUT_QUEUE_BYTES: int = env_setting(ENV_PREFIX, "MAX_OUTPUT_QUEUE_BYTES", 4 * 1024 * 1024)

#: Granularity of the echo/liveness/poll timer, in seconds.
TICK_INTERVAL: float = env_setting(ENV_PREFIX, "TICK_INTERVAL", 1.0)

#: Seconds a new connection may take to finish the handshake (hello and
#: features reply) before it is closed.
HANDSHAKE_TIMEOUT: float = env_setting(ENV_PREFIX, "HANDSHAKE_TIMEOUT", 15.0)

#: Connections that may be in their handshake (no features reply yet) at once;
#: past it the oldest is closed, so idle connections that never send HELLO
#: cannot keep a real switch out before their HANDSHAKE_TIMEOUT.
MAX_PENDING_HANDSHAKES: int = env_setting(ENV_PREFIX, "MAX_PENDING_HANDSHAKES", 1024)

#: Send SET_CONFIG (FRAG_NORMAL, miss_send_len NO_BUFFER) after the features
#: reply, so packet-ins carry whole packets and no switch buffer ids.
SEND_SET_CONFIG: bool = env_setting(ENV_PREFIX, "SEND_SET_CONFIG", True)

#: Emit ``kytos/of_core.reachable.mac`` for each packet-in (upstream contract;
#: kytos/topology uses it).  Turning it off saves one app event per packet-in.
EMIT_REACHABLE_MAC: bool = env_setting(ENV_PREFIX, "EMIT_REACHABLE_MAC", True)

#: Largest OpenFlow message accepted from a switch, in bytes (the header's
#: length field allows 65535).  A header announcing more closes the connection.
MAX_MESSAGE_BYTES: int = env_setting(ENV_PREFIX, "MAX_MESSAGE_BYTES", 65535)

#: Multipart replies being assembled at once per connection (distinct xids).
#: The oldest is dropped, with a log line, when a new one would exceed it.
MAX_MULTIPART_IN_FLIGHT: int = env_setting(ENV_PREFIX, "MAX_MULTIPART_IN_FLIGHT", 64)

#: Body entries one multipart reply may accumulate across REPLY_MORE parts
#: before it is discarded (bounds memory if a switch never ends a reply).
MAX_MULTIPART_ENTRIES: int = env_setting(ENV_PREFIX, "MAX_MULTIPART_ENTRIES", 1_000_000)

#: Messages that arrive between the hello and the features reply (before the
#: switch exists) are held and replayed after the handshake, up to this many.
MAX_PENDING_BEFORE_FEATURES: int = env_setting(ENV_PREFIX, "MAX_PENDING_BEFORE_FEATURES", 256)

#: Bytes a connection may have sent that the controller has not handled yet
#: (queued for of_core); past it reading from that connection pauses until half
#: is handled, so a flooding peer is slowed by TCP instead of growing memory.
MAX_INPUT_BACKLOG_BYTES: int = env_setting(ENV_PREFIX, "MAX_INPUT_BACKLOG_BYTES", 1024 * 1024)
