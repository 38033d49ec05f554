"""Settings of the kytos/flow_manager NApp."""

#: How many sent FlowMods are remembered by xid to map OFPT_ERROR replies.
FLOW_MODS_SENT_MAX_SIZE = 10000

#: Re-send the flows flow_manager installed when a switch (re)connects.
REPLAY_ON_HANDSHAKE = True

#: Keep (and replay) flows that have an idle timeout.  Off: such flows live
#: only while traffic uses them and their owner re-installs them on demand
#: (e.g. learned L2 flows, whose MAC may have moved while the switch was away).
KEEP_IDLE_TIMEOUT_FLOWS = False

#: Where installed flows are kept across restarts, relative to Kytos' base
#: directory ($VIRTUAL_ENV).  None or "" keeps them in memory only.
STORE_FILE = "var/lib/kytos/flow_manager/flows.json"

#: Seconds between writes of the store file.  Changes are batched so that
#: thousands of per-client flows cost one write, not one each; a crash loses
#: at most this much (shutdown always writes).
STORE_FLUSH_INTERVAL = 1.0

#: Seconds between two consistency rounds per switch: the bundle's stored flows
#: (pipeline, blocks, ... — cookies in our namespace) that the switch lacks are
#: re-added; other owners' flows are never touched. 0 turns the check off.
CONSISTENCY_CHECK_INTERVAL = 10.0
