"""Shared code of the xmpp_ofc NApp bundle.

The NApps under ``napps/`` are thin Kytos shells; everything they share
(Kytos fixes, the launcher, OpenFlow helpers, packet parsing, the cookie plan)
lives in this package, which is installed into the virtualenv.
"""

__version__ = "0.1.0"
