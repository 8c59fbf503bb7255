"""Sources that are not a venue's public websocket: data a node of the venue writes to disk."""
