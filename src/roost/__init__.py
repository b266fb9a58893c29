"""Roost: a mail store server."""

__version__ = "0.1.0"
