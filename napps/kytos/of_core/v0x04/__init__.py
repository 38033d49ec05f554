"""OpenFlow 1.3 (wire version 0x04) specifics of kytos/of_core."""
