"""xmpp_ofc/l2_switch NApp."""
