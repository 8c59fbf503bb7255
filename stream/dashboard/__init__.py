"""The dashboard page the worker serves (static files)."""
