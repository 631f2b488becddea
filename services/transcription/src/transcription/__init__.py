"""Transcription service."""
