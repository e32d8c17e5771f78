"""Marshmallow schemas per dialect; each maps its wire format to the engine's names."""
