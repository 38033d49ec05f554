"""kytos/of_core NApp."""
