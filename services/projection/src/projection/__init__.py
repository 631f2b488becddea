"""Projection service."""
