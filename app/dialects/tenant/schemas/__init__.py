"""The tenant coupon dialect's marshmallow schemas: its wire names mapped to the engine's."""
