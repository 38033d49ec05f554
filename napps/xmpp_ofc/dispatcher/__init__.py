"""xmpp_ofc/dispatcher NApp."""
