"""Kytos shell of the kytos/flow_manager NApp.

Placeholder shell: it loads, logs and stops cleanly.  Its logic lands with
the issue that owns it (see the repository README).
"""

from kytos.core import KytosNApp, log


class Main(KytosNApp):
    """The kytos/flow_manager NApp."""

    def setup(self) -> None:
        log.info("kytos/flow_manager loaded")

    def execute(self) -> None:
        """Nothing runs periodically yet."""

    def shutdown(self) -> None:
        log.info("kytos/flow_manager stopped")
