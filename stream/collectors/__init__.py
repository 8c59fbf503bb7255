"""Websocket collectors: one module per venue, listed in `stream.collectors.registry`."""
