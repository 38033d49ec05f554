"""Test and benchmark helpers: a controller subprocess and a fake OpenFlow switch."""
