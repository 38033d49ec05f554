"""Settings of the xmpp_ofc/dispatcher NApp."""
