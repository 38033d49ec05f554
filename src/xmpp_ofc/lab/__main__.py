"""``python -m xmpp_ofc.lab up|status|load|down|list|cleanup`` (see :mod:`xmpp_ofc.lab.cli`).

``list`` and ``cleanup`` are for the morning after a crash: they show and
remove whatever any lab run (tests included) left behind, by tag.
"""

from __future__ import annotations

import sys

from xmpp_ofc.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
