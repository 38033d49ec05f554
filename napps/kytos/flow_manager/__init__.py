"""kytos/flow_manager NApp."""
