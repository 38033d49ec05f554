"""Settings of the xmpp_ofc/rate_limiter NApp."""
