"""Bastion: take trained ML models from prototype to production and keep them honest there."""

__version__ = "0.1.0"
