"""What a port description or port status means for a switch's interfaces.

Pure functions over pyof ``Port`` structures and plain ints; the shell
applies them to Kytos ``Interface`` objects and emits the events named here.
"""

from __future__ import annotations

from typing import Any

from pyof.v0x04.asynchronous.port_status import PortReason

OFPPS_LINK_DOWN = 1


def value(field: Any) -> Any:
    """The plain value of a pyof field (unpacked fields wrap it in ``.value``)."""
    return getattr(field, "value", field)


def interface_attributes(port: Any) -> dict[str, Any]:
    """Interface constructor arguments for a pyof OF1.3 ``Port``.

    ``speed`` is bytes per second from ``curr_speed`` (kbit/s), or ``None`` so
    Kytos derives it from the feature bits.
    """
    curr_speed_kbps = int(value(port.curr_speed))
    return {
        "name": value(port.name),
        "port_number": int(value(port.port_no)),
        "address": value(port.hw_addr),
        "state": int(value(port.state)),
        "features": int(value(port.curr)),
        "config": int(value(port.config)),
        "speed": curr_speed_kbps * 1000 / 8 if curr_speed_kbps else None,
    }


def port_description(attributes: dict[str, Any]) -> dict[str, Any]:
    """The ``port_description`` content of ``kytos/of_core.switch.port.created``."""
    return {
        "alias": attributes["name"],
        "mac": attributes["address"],
        "state": attributes["state"],
    }


def port_status_events(reason: int, old_state: int | None, new_state: int) -> list[str]:
    """Interface event suffixes (``kytos/of_core.switch.interface.<suffix>``) for a PORT_STATUS.

    ``old_state`` is the known interface's state, ``None`` if the port is new
    to us.  A MODIFY of an unknown port creates it; a MODIFY that flips the
    LINK_DOWN bit also reports ``link_up``/``link_down``.
    """
    if reason == PortReason.OFPPR_ADD:
        return ["created"]
    if reason == PortReason.OFPPR_DELETE:
        return ["deleted"]
    if old_state is None:
        return ["created"]
    events = ["modified"]
    was_down = bool(old_state & OFPPS_LINK_DOWN)
    is_down = bool(new_state & OFPPS_LINK_DOWN)
    if was_down and not is_down:
        events.append("link_up")
    elif is_down and not was_down:
        events.append("link_down")
    return events
