"""Typed payloads, one module per producing service. Importing this registers them all."""

from . import agent, conversation, gateway, sender, transcription

__all__ = ["agent", "conversation", "gateway", "sender", "transcription"]
