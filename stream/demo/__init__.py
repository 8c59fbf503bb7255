"""The demo session `liqstream dev` replays: a liquidation cascade across every venue.

`session` holds the story (a seeded generator of venue-neutral orders), `replay` turns it
into each venue's own frames with event times of now, and `rules.yaml` holds the rules the
demo is expected to breach within its first minute.
"""

from __future__ import annotations

from pathlib import Path

RULES = Path(__file__).with_name("rules.yaml")
