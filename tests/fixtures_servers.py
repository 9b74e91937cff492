"""Real servers on loopback used by several areas."""
