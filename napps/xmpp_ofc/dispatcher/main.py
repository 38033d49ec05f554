"""Kytos shell of the xmpp_ofc/dispatcher NApp.

Placeholder shell: it loads, logs and stops cleanly.  Its logic lands with
the issue that owns it (see the repository README).
"""

from kytos.core import KytosNApp, log


class Main(KytosNApp):
    """The xmpp_ofc/dispatcher NApp."""

    def setup(self) -> None:
        log.info("xmpp_ofc/dispatcher loaded")

    def execute(self) -> None:
        """Nothing runs periodically yet."""

    def shutdown(self) -> None:
        log.info("xmpp_ofc/dispatcher stopped")
