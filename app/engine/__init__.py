"""Business rules; the only layer that opens and commits transactions."""
