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
