"""Per-instrument subscriptions as the venue defines them, without any network code.

Which topics go on which connection (`assign`), in which messages (`batches`), and what the
venue's answers mean for one live connection (`SubscriptionState`). The websocket loop
(`stream.collectors.connection`) sends what this module plans and hands it every reply.

Rules, for every venue alike:
- a connection never exceeds the venue's topics or characters per connection, a message never
  its topics per message; more topics open more connections (up to connections per IP);
- every request waits for its answer; a refused topic is retried alone once, then left out
  with the venue's reason; the other topics of a refused batch are sent again;
- a topic refused on an earlier connection stays reported as refused on the next one and is
  tried there once more, alone, so that it costs no other topic a refusal;
- a request with no answer within the timeout counts as refused (reason says so); its clock
  starts when it leaves (`sent`), not while it waits its turn behind the venue's pacing
  (`queued`), and no answer is matched to a request not sent yet.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stream.collectors.venue import SubscribeReply, SubscriptionLimits


def topic_chars(topic: str) -> int:
    """Characters a topic adds to a JSON array of topics: the name, two quotes, a comma."""
    return len(topic) + 3


def _fits(count: int, chars: int, topic: str, limits: SubscriptionLimits) -> bool:
    if limits.topics_per_connection is not None and count + 1 > limits.topics_per_connection:
        return False
    return (
        limits.chars_per_connection is None
        or chars + topic_chars(topic) <= limits.chars_per_connection
    )


def assign(
    shards: Sequence[set[str]], wanted: Iterable[str], limits: SubscriptionLimits
) -> tuple[list[set[str]], list[str]]:
    """Topics per connection after the listing changed: each topic stays where it is, topics
    no longer wanted leave, new ones fill the first connection with room, then new connections
    (up to `connections_per_ip`). Returns the connections' topics and the topics left out."""
    wanted_set = set(wanted)
    result = [shard & wanted_set for shard in shards]
    placed = set().union(*result) if result else set()
    chars = [sum(topic_chars(t) for t in shard) for shard in result]
    left_out: list[str] = []
    for topic in sorted(wanted_set - placed):
        for index, shard in enumerate(result):
            if _fits(len(shard), chars[index], topic, limits):
                shard.add(topic)
                chars[index] += topic_chars(topic)
                break
        else:
            if limits.connections_per_ip is not None and len(result) >= limits.connections_per_ip:
                left_out.append(topic)
                continue
            result.append({topic})
            chars.append(topic_chars(topic))
    return result, left_out


def batches(topics: Iterable[str], limits: SubscriptionLimits) -> list[list[str]]:
    """Topics in messages of at most `topics_per_message`, in a stable order."""
    ordered = sorted(topics)
    size = max(1, limits.topics_per_message)
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


class Pacer:
    """Spaces a feed's subscribe messages at the venue's `messages_per_second`, across all of
    its connections: venues count them per IP (Lighter), and every connection of a feed shares
    one. `slot` reserves the next free send time; nothing here sleeps."""

    def __init__(self, messages_per_second: float | None) -> None:
        self.interval_s = 1.0 / messages_per_second if messages_per_second else 0.0
        self._next_s = float("-inf")

    def slot(self, now_s: float) -> float:
        """Reserve the next send time; the seconds to wait until then (0: send now)."""
        at_s = max(now_s, self._next_s)
        self._next_s = at_s + self.interval_s
        return at_s - now_s


@dataclass(frozen=True, slots=True)
class Request:
    req_id: str
    op: str  # "subscribe" | "unsubscribe"
    topics: tuple[str, ...]
    sent_s: float = 0.0


@dataclass(slots=True)
class Outcome:
    """What one reply changed: topics now acknowledged, topics the venue refused (with its
    reason), those given up on for good, and the requests to send next."""

    acked: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    given_up: list[tuple[str, str]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    not_unsubscribed: list[tuple[str, str]] = field(default_factory=list)


class SubscriptionState:
    """The subscriptions of one live connection: acknowledged, waiting, refused."""

    def __init__(
        self, limits: SubscriptionLimits, refused: Mapping[str, str] | None = None
    ) -> None:
        """`refused`: topics given up on by this connection's previous session, with reasons."""
        self.limits = limits
        self.acked: set[str] = set()
        self.pending: dict[str, Request] = {}  # by req_id, oldest first
        self.rejected: dict[str, str] = dict(refused or {})  # topic -> the venue's reason
        self._retried: set[str] = set(self.rejected)  # one more refusal gives up on them
        self._lone: set[str] = set(self.rejected)  # to try once more, each in its own request
        self._ids = itertools.count(1)
        self.unsent: set[str] = set()  # req_ids queued behind the venue's pacing

    def queued(self, requests: Iterable[Request]) -> None:
        """These requests wait their turn to be sent: no timeout, no answer, until `sent`."""
        self.unsent.update(request.req_id for request in requests)

    def sent(self, req_id: str, now_s: float) -> None:
        """The request left now: its answer timeout counts from here."""
        self.unsent.discard(req_id)
        request = self.pending.get(req_id)
        if request is not None:
            self.pending[req_id] = Request(req_id, request.op, request.topics, now_s)

    def _request(self, op: str, topics: Sequence[str], now_s: float) -> Request:
        request = Request(str(next(self._ids)), op, tuple(topics), now_s)
        self.pending[request.req_id] = request
        return request

    def plan(self, wanted: set[str], now_s: float = 0.0) -> list[Request]:
        """The requests that bring this connection to `wanted` (unsubscribes first)."""
        for topic in set(self.rejected) - wanted:
            del self.rejected[topic]
        waiting: dict[str, set[str]] = {"subscribe": set(), "unsubscribe": set()}
        for request in self.pending.values():
            waiting[request.op].update(request.topics)
        to_unsubscribe = self.acked - wanted - waiting["unsubscribe"]
        to_subscribe = wanted - self.acked - waiting["subscribe"] - set(self.rejected)
        lone = sorted((self._lone & wanted) - self.acked - waiting["subscribe"])
        self._lone.clear()
        unsubscribes = batches(to_unsubscribe, self.limits)
        subscribes = [[topic] for topic in lone] + batches(to_subscribe, self.limits)
        return [self._request("unsubscribe", batch, now_s) for batch in unsubscribes] + [
            self._request("subscribe", batch, now_s) for batch in subscribes
        ]

    def _match(self, reply: SubscribeReply) -> Request | None:
        if reply.req_id is not None:  # a late answer to an expired request matches nothing
            if reply.req_id in self.unsent:
                return None
            return self.pending.get(reply.req_id)
        candidates = [
            r
            for r in self.pending.values()
            if reply.op in (None, r.op) and r.req_id not in self.unsent
        ]
        if reply.topics:
            named = set(reply.topics) | set(reply.rejected)
            return next((r for r in candidates if named & set(r.topics)), None)
        return candidates[0] if candidates else None

    def on_reply(self, reply: SubscribeReply, now_s: float = 0.0) -> Outcome | None:
        """Apply one venue answer; None when it answers no request of this connection."""
        request = self._match(reply)
        if request is None:
            return None
        outcome = Outcome()
        if reply.ok:
            done = [t for t in request.topics if not reply.topics or t in reply.topics]
            rest = tuple(t for t in request.topics if t not in done)
            if rest:
                self.pending[request.req_id] = Request(
                    request.req_id, request.op, rest, request.sent_s
                )
            else:
                del self.pending[request.req_id]
            if request.op == "subscribe":
                self.acked.update(done)
                for topic in done:  # refused before, accepted now
                    self.rejected.pop(topic, None)
                outcome.acked = done
            else:
                self.acked.difference_update(done)
            return outcome
        del self.pending[request.req_id]
        if request.op == "unsubscribe":  # still subscribed: its frames are parsed as before
            outcome.not_unsubscribed = [(t, reply.reason) for t in request.topics]
            return outcome
        named: list[str] = [t for t in request.topics if t in reply.rejected]
        named = named or list(request.topics)
        for topic in named:
            outcome.refused.append((topic, reply.reason))
            if topic in self._retried:
                self.rejected[topic] = reply.reason
                outcome.given_up.append((topic, reply.reason))
            else:
                self._retried.add(topic)
                outcome.requests.append(self._request("subscribe", [topic], now_s))
        others = [t for t in request.topics if t not in named]
        outcome.requests += [
            self._request("subscribe", batch, now_s) for batch in batches(others, self.limits)
        ]
        return outcome

    def expire(self, now_s: float, timeout_s: float) -> list[Outcome]:
        """Requests unanswered for `timeout_s` count as refused with that reason."""
        late = [
            r
            for r in self.pending.values()
            if r.req_id not in self.unsent and now_s - r.sent_s >= timeout_s
        ]
        outcomes = []
        for request in late:
            reason = f"no answer within {timeout_s:g}s"
            outcome = self.on_reply(
                SubscribeReply(ok=False, req_id=request.req_id, reason=reason), now_s
            )
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes
