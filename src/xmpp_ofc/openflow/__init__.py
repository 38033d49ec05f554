"""OpenFlow 1.3 helpers shared by every NApp of the bundle.

The JSON shape of flows is the public contract of upstream ``kytos/flow_manager``
(match fields, actions) plus the ``instructions`` extension later Kytos releases
use.  :mod:`.flow_json` is the entry point; :mod:`.match`, :mod:`.actions` and
:mod:`.meter` hold the per-family codecs.
"""
