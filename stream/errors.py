"""The error root. Subclasses exist only where callers handle them differently."""

from __future__ import annotations


class LiqstreamError(Exception):
    """Base of every error liqstream raises on purpose."""


class Rejected(LiqstreamError):
    """Input that cannot become a valid record; `reason` is a short, stable code.

    Rejects are dead-lettered with the reason, never dropped silently.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ConfigError(LiqstreamError):
    """Invalid configuration or rules file; the message names the variable, line or field."""
