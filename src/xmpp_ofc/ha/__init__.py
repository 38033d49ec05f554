"""Several controllers on one network (issue 12): who is MASTER of each switch."""
