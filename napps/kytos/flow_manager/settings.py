"""Settings of the kytos/flow_manager NApp."""
