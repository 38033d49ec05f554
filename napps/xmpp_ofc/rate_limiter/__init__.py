"""xmpp_ofc/rate_limiter NApp."""
