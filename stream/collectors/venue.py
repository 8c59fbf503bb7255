"""What every venue module provides: the contract between venue files and the shells.

A venue module (one file per exchange under `stream.collectors`) is the client side of the
venue, pure data and pure functions: URLs, subscribe messages, the frame parser, heartbeat
answers, limits and instrument rules. The websocket loop (`stream.collectors.connection`) is
generic and only calls what is declared here. How the venue's server behaves (acks, pongs,
heartbeats, compression, the frames it sends) lives apart, in `stream.simulators.<venue>`,
for the fake exchange; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from stream.errors import Rejected
from stream.schema import LiquidationEvent


@dataclass(frozen=True, slots=True)
class Instrument:
    """Contract rules of one symbol.

    `contract_size`: linear: quoted units of the base per contract (OKX BTC-USDT-SWAP 0.01,
    Binance USD-M 1); inverse: USD per contract (Binance COIN-M BTC 100, BitMEX XBTUSD 1).
    `coin` is canonical (see `stream.symbols.canonical_coin`); `units` is how many coins one
    quoted unit holds (1000 for `1000PEPEUSDT`).
    """

    symbol: str
    coin: str
    quote: str
    contract_type: str  # "linear" | "inverse"
    contract_size: float = 1.0
    units: int = 1


Instruments = Mapping[str, Instrument]


@dataclass(slots=True)
class Parsed:
    """What one frame yields: zero or more events and zero or more rejects.

    A reject keeps the offending item's text in `Rejected.detail`. The reason
    `unknown_symbol` makes the shell refresh instruments once and parse the frame again.
    """

    events: list[LiquidationEvent] = field(default_factory=list)
    rejects: list[Rejected] = field(default_factory=list)


UNKNOWN_SYMBOL = "unknown_symbol"

# parse(frame_text, instruments, received_ts_ms) -> Parsed. Never raises.
Parser = Callable[[str, Instruments, int], Parsed]


@dataclass(frozen=True, slots=True)
class SubscriptionLimits:
    """A venue's documented subscription rules; None where the venue documents no limit.

    `source` names the document the numbers come from. `chars_per_connection` counts the
    topics of one connection as a JSON array would (each topic quoted and comma-separated).
    """

    source: str
    topics_per_message: int = 1
    topics_per_connection: int | None = None
    chars_per_connection: int | None = None
    connections_per_ip: int | None = None
    messages_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class SubscribeReply:
    """What one venue answer says about a subscribe or unsubscribe request.

    `req_id` ties it to the request when the venue echoes one (Bybit); otherwise `topics` (the
    topics the reply names, Kraken's product ids, dYdX's market) or, failing both, the oldest
    request still waiting. `ok=False`: the request failed; `rejected` are the topics the venue
    names as the cause (the others of that request were not subscribed either).
    """

    ok: bool = True
    req_id: str | None = None
    op: str | None = None  # "subscribe" | "unsubscribe" when the reply says
    topics: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class PerSymbol:
    """How a feed that subscribes one topic per instrument does it.

    topic(symbol): the venue's topic name for one instrument.
    request(op, topics, req_id): the text of one subscribe/unsubscribe message.
    read_reply(text): a subscribe/unsubscribe answer as a `SubscribeReply`, else None.
    preamble: messages sent once on every connection before any topic (Kraken's heartbeat).
    can_unsubscribe: False when delisted topics can only be dropped by reconnecting.
    """

    limits: SubscriptionLimits
    topic: Callable[[str], str]
    request: Callable[[str, Sequence[str], str], str]
    read_reply: Callable[[str], SubscribeReply | None]
    preamble: tuple[str, ...] = ()
    can_unsubscribe: bool = True


@runtime_checkable
class Flushes(Protocol):
    """A stateful parser that holds rows across frames (Bitfinex's pairing) and can settle
    them on demand, so a collector that stops publishes them instead of losing them."""

    def flush(self, instruments: Instruments, received_ts: int) -> Parsed: ...


def _one_page(url: str) -> list[str]:
    return [url]


def _no_next_page(url: str, payload: object) -> str | None:
    return None


@dataclass(frozen=True)
class Feed:
    """One websocket feed of a venue (a venue may have several: USD-M and COIN-M).

    Client side:
      url: the production endpoint (path included); collectors accept an override.
      subscribe(symbols): the text messages to send after connecting. `symbols` is the
        instrument list when `needs_symbols`, else empty. Batching limits live here.
      parse: frame text -> Parsed (see `Parser`).
      decode(message): wire message -> text (gzip for HTX); identity by default.
      answer(text): the reply the venue demands for a server heartbeat in `text`
        (HTX ping, Deribit test_request), or None.
      ping_text / ping_interval_s: an application-level ping the client must send.
      max_connection_age_s: reconnect before the venue cuts the connection (Binance 24 h).
      idle_timeout_s: no message for this long means the connection is dead.
    Instruments:
      instruments_url: public REST endpoint with contract rules, or None.
      instruments_from_rest(payload): decoded JSON -> {symbol: Instrument} (one page).
      instrument_requests(url): the URLs one refresh fetches (OKX: one per instType).
      next_page(url, payload): the URL of the page after `payload`, or None (Bybit's cursor).
    Per-symbol subscriptions:
      per_symbol: topics, limits and reply reading of a feed subscribed per instrument
        (None: one subscription covers the venue, `subscribe` says how).
      replays_on_subscribe: the venue re-sends past events on subscribing (dYdX): their ids
        are remembered across collector restarts.
    """

    name: str  # "binance-usdm"
    exchange: str  # "binance"
    url: str
    subscribe: Callable[[Sequence[str]], list[str]]
    parse: Parser
    needs_symbols: bool = False
    decode: Callable[[str | bytes], str] = lambda message: (
        message if isinstance(message, str) else message.decode()
    )
    answer: Callable[[str], str | None] = lambda text: None
    ping_text: str | None = None
    ping_interval_s: float = 20.0
    max_connection_age_s: float | None = None
    idle_timeout_s: float = 300.0
    instruments_url: str | None = None
    instruments_from_rest: Callable[[object], dict[str, Instrument]] | None = None
    notes: str = ""
    lower_bound: bool = False  # the venue samples its liquidations: totals are a floor
    instrument_requests: Callable[[str], list[str]] = _one_page
    next_page: Callable[[str, object], str | None] = _no_next_page
    per_symbol: PerSymbol | None = None
    replays_on_subscribe: bool = False
    # HTTP headers the venue wants on the websocket handshake (Gate's X-Gate-Size-Decimal).
    handshake_headers: tuple[tuple[str, str], ...] = ()
    # A fresh stateful parser per pipeline, used instead of `parse`, for a venue whose
    # liquidations span frames (Bitfinex pairs trigger and execution rows of a position).
    # One that holds rows implements `Flushes`: the collector settles them when it stops.
    stateful_parse: Callable[[], Parser] | None = None
