"""The protected XMPP server's addresses as learned from capture packet-ins (issue 13).

Capture flows match the XMPP port only (the server's address is never configured),
but every capture packet-in carries it: its destination. Those destinations are
remembered here so that an operator's manual block of the server itself is refused
(REST 400), next to the ``protected_addresses`` setting.

Why only manual blocks: a destination is whatever a client writes in its packets,
so any client could make any address "a server" by connecting to it. A learned
address therefore never exempts anyone from the automatic policy (the setting
does), and an address seen as the *source* of a capture packet-in (a client) is
dropped from the learned ones and not learned again while it is remembered as a
client. Both tables are bounded: learned addresses first come first kept (the real
server is learned from its first client, before any flood; a spoofed flood of
destinations cannot evict it), client addresses least recent first.
"""

from __future__ import annotations

from collections import OrderedDict

#: Learned server addresses kept at most, and client addresses remembered at most.
MAX_LEARNED = 64
MAX_CLIENTS = 16384


class ServerAddresses:
    """Destinations of capture packet-ins that were never a client's source."""

    def __init__(self, max_learned: int = MAX_LEARNED, max_clients: int = MAX_CLIENTS) -> None:
        self.max_learned = max_learned
        self.max_clients = max_clients
        self._learned: dict[str, None] = {}
        self._clients: OrderedDict[str, None] = OrderedDict()
        #: Destinations not learned because the table was full.
        self.overflow = 0

    def observe(self, source: str, destination: str | None) -> None:
        """One capture packet-in from ``source`` to ``destination`` (canonical addresses)."""
        self._learned.pop(source, None)
        clients = self._clients
        if source in clients:
            clients.move_to_end(source)
        else:
            clients[source] = None
            if len(clients) > self.max_clients:
                clients.popitem(last=False)
        if destination is None or destination in self._learned or destination in clients:
            return
        if len(self._learned) >= self.max_learned:
            self.overflow += 1
            return
        self._learned[destination] = None

    def __contains__(self, ip: str) -> bool:
        return ip in self._learned

    def learned(self) -> list[str]:
        """The learned addresses, first learned first."""
        return list(self._learned)
