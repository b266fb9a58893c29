"""Roost: a mail store server."""
