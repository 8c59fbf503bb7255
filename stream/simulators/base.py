"""What the fake exchange needs to imitate one feed's server, and the replies venues share.

A simulator is the server side of a feed, written from the venue's documents: the frames it
sends (`render`), its answers to client messages (acks, pongs, refusals), the heartbeats it
demands an answer to, its wire encoding and, for venues with per-connection rules, one
session per connection. The collector never imports any of it: the client side of a venue is
`stream.collectors.<venue>`, its server side `stream.simulators.<venue>`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from stream.collectors.venue import Instrument

# render(instrument, side, price, coins, ts_ms, seq) -> one frame
Render = Callable[[Instrument, str, float, float, int, int], str]


class FakeSession(Protocol):
    """One connection of a fake venue that keeps per-connection state (limits, topics)."""

    topics: set[str]

    def reply(self, text: str) -> tuple[list[str], list[str]]:
        """The answers to a client message and the topics it newly subscribed."""
        ...

    def wants(self, frame: str) -> bool:
        """True when `frame` belongs to a topic this connection subscribed."""
        ...


def no_reply(text: str) -> list[str]:
    return []


def no_heartbeat() -> str | None:
    return None


def as_text(text: str) -> str | bytes:
    return text


@dataclass(frozen=True)
class Simulator:
    """The server side of one feed (a venue may have several: USD-M and COIN-M).

    render(instrument, side, price, coins, ts_ms, seq): one frame in the venue's wire format
      (before `encode`) carrying exactly one liquidation of `coins` coins of the canonical coin
      at `price` USD per coin, position `side`; `seq` makes ids unique. The fake exchange and
      the demo use it; the feed's parser must give the liquidation back.
    reply(text): the server's answers to a client message (acks, pongs).
    heartbeat(): a server heartbeat that the client must answer, or None.
    encode(text): text -> wire message (gzip for HTX); identity by default.
    session(unknown_topics): per-connection server state (limits, topics subscribed), for a
      venue whose connections each keep their own; None when one reply function will do.
    """

    render: Render
    reply: Callable[[str], list[str]] = no_reply
    heartbeat: Callable[[], str | None] = no_heartbeat
    encode: Callable[[str], str | bytes] = as_text
    session: Callable[[frozenset[str]], FakeSession] | None = None


def client_message(text: str) -> dict[str, Any] | None:
    """A client message's JSON object, or None for anything else (a plain-text ping, bad
    JSON, an array): venues leave what they do not understand unanswered."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None


def dumps(message: object) -> str:
    """One server message as the JSON text venues send."""
    return orjson.dumps(message).decode()


def answer(message: object) -> list[str]:
    """The reply list of a server that answers with one JSON message."""
    return [dumps(message)]


def text_pong(ping: str = "ping", pong: str = "pong") -> Callable[[str], list[str] | None]:
    """A venue that answers the plain text `ping` with the plain text `pong` (OKX, Bitget,
    BitMEX); None for any other text, which the venue's own reply function then reads."""

    def reply(text: str) -> list[str] | None:
        return [pong] if text == ping else None

    return reply


def op_subscribe_echo(conn_id: str) -> Callable[[str], list[str]]:
    """OKX v5 and Bitget v2 (which follows OKX's protocol): the text `ping` answered `pong`, a
    `{"op": "subscribe", "args": [...]}` answered by an `event: subscribe` echo of each arg,
    anything else unanswered."""

    def reply(text: str) -> list[str]:
        if text == "ping":
            return ["pong"]
        message = client_message(text)
        if message is None or message.get("op") != "subscribe":
            return []
        return [
            dumps({"event": "subscribe", "arg": arg, "connId": conn_id})
            for arg in message.get("args", [])
        ]

    return reply


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stateless(session: Callable[[], FakeSession]) -> Callable[[str], list[str]]:
    """A reply function from a venue's session class, for a connection without state (the
    fake exchange uses the session itself when it keeps per-connection topics)."""

    def reply(text: str) -> list[str]:
        replies, _ = session().reply(text)
        return replies

    return reply


class TopicSession:
    """Per-connection state every session-keeping fake shares: the topics this connection
    subscribed, the topics the venue refuses (`unknown_topics`), and routing of a frame to the
    connection that subscribed the topic `frame_topic` reads from it."""

    def __init__(self, unknown_topics: frozenset[str] = frozenset()) -> None:
        self.unknown_topics = unknown_topics
        self.topics: set[str] = set()

    def frame_topic(self, frame: dict[str, Any]) -> object:
        """The topic a data frame belongs to (by default its `topic` field)."""
        return frame.get("topic")

    def wants(self, frame: str) -> bool:
        message = client_message(frame)
        return message is not None and self.frame_topic(message) in self.topics


def contracts(instrument: Instrument, coins: float, price: float) -> float:
    """How many of the venue's contracts hold `coins` coins at `price` USD per coin: inverse
    contracts are `contract_size` USD each, linear ones `contract_size` lots of `units` coins."""
    if instrument.contract_type == "inverse":
        return coins * price / instrument.contract_size
    return coins / instrument.units / instrument.contract_size


def quoted_price(instrument: Instrument, price: float) -> float:
    """The price as the venue quotes it: per lot of `units` coins (1000PEPE) on linear
    contracts, per coin on inverse ones."""
    return price if instrument.contract_type == "inverse" else price * instrument.units
