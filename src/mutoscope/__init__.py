"""Mutoscope: open, self-hosted video generation with an OpenAI-compatible Videos API."""

__version__ = "0.1.0"
