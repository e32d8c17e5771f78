"""A recording stand-in for the downstream services (email verifier, realizer, events)."""
