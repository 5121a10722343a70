"""Bots shipped with the messenger; each is an end-to-end participant through the client SDK."""
