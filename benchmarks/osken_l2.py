"""A minimal reactive L2 learning switch for os-ken 3.1.0: the benchmark's peer (issue 9).

Written for the project the way a new os-ken user writes one (the shape of
Ryu's ``simple_switch_13``): a table-miss flow sends every frame to the
controller; each packet-in teaches the source MAC's port; a known destination
gets a FlowMod (``in_port`` + ``eth_dst`` -> output) and a PacketOut carrying the
frame, an unknown or broadcast one a flooding PacketOut.

It runs only inside os-ken (``benchmarks/.venv-osken``, created by
``osken_runner.ensure_venv``), never in the product venv:

    benchmarks/.venv-osken/bin/osken-manager --ofp-tcp-listen-port 6653 benchmarks/osken_l2.py

The cookies let the load generator tell the table-miss flow (pipeline ready)
from the forwarding flows that answer packet-ins (``osken_runner.OSKEN_PROFILE``).
"""

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3

TABLE_MISS_COOKIE = 0x05CE000000000001
FORWARD_COOKIE = 0x05CE000000000002
FORWARD_PRIORITY = 1000
IDLE_TIMEOUT = 300


class L2Switch(app_manager.OSKenApp):
    """Learn source MACs per switch; forward known destinations, flood the rest."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mac_to_port = {}

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        datapath = ev.msg.datapath
        ofproto, parser = datapath.ofproto, datapath.ofproto_parser
        actions = [parser.OFPActionOutput(ofproto.OFPP_CONTROLLER, ofproto.OFPCML_NO_BUFFER)]
        datapath.send_msg(
            parser.OFPFlowMod(
                datapath=datapath,
                cookie=TABLE_MISS_COOKIE,
                table_id=0,
                priority=0,
                match=parser.OFPMatch(),
                instructions=[parser.OFPInstructionActions(ofproto.OFPIT_APPLY_ACTIONS, actions)],
            )
        )

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        datapath = msg.datapath
        ofproto, parser = datapath.ofproto, datapath.ofproto_parser
        in_port = msg.match["in_port"]
        eth = packet.Packet(msg.data).get_protocols(ethernet.ethernet)[0]
        table = self.mac_to_port.setdefault(datapath.id, {})
        table[eth.src] = in_port
        out_port = table.get(eth.dst, ofproto.OFPP_FLOOD)
        actions = [parser.OFPActionOutput(out_port)]
        if out_port != ofproto.OFPP_FLOOD:
            datapath.send_msg(
                parser.OFPFlowMod(
                    datapath=datapath,
                    cookie=FORWARD_COOKIE,
                    table_id=0,
                    priority=FORWARD_PRIORITY,
                    idle_timeout=IDLE_TIMEOUT,
                    match=parser.OFPMatch(in_port=in_port, eth_dst=eth.dst),
                    instructions=[
                        parser.OFPInstructionActions(ofproto.OFPIT_APPLY_ACTIONS, actions)
                    ],
                )
            )
        data = msg.data if msg.buffer_id == ofproto.OFP_NO_BUFFER else None
        datapath.send_msg(
            parser.OFPPacketOut(
                datapath=datapath,
                buffer_id=msg.buffer_id,
                in_port=in_port,
                actions=actions,
                data=data,
            )
        )
