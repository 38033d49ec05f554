"""Kytos shell of the kytos/of_core NApp.

Placeholder shell: it loads, logs and stops cleanly.  Its logic lands with
the issue that owns it (see the repository README).
"""

from kytos.core import KytosNApp, log


class Main(KytosNApp):
    """The kytos/of_core NApp."""

    def setup(self) -> None:
        log.info("kytos/of_core loaded")

    def execute(self) -> None:
        """Nothing runs periodically yet."""

    def shutdown(self) -> None:
        log.info("kytos/of_core stopped")
