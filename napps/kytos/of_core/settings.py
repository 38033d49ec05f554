"""Settings of the kytos/of_core NApp."""
