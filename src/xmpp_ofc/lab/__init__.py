"""The lab: real Open vSwitch switches and hosts in network namespaces, without Kytos.

Integration tests and the lab command build on :class:`Topology`; the
modules underneath are usable alone: :mod:`.netns` (namespaces, veths),
:mod:`.ovs` (one private OVS instance), :mod:`.relay` (controller access from
inside a namespace) and :mod:`.state` (what a run owns, and crash cleanup).
"""

from xmpp_ofc.lab.ovs import FlowEntry, OvsSwitch
from xmpp_ofc.lab.state import cleanup, known_tags, new_tag
from xmpp_ofc.lab.topology import Host, Switch, Topology

__all__ = [
    "FlowEntry",
    "Host",
    "OvsSwitch",
    "Switch",
    "Topology",
    "cleanup",
    "known_tags",
    "new_tag",
]
