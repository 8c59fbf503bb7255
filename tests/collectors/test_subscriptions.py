"""The pure subscription rules: topics per connection and message, and reading the answers."""

from __future__ import annotations

import pytest

from stream.collectors.bybit import LIMITS as BYBIT_LIMITS
from stream.collectors.bybit import read_reply as bybit_reply
from stream.collectors.subscriptions import (
    Pacer,
    SubscriptionState,
    assign,
    batches,
    topic_chars,
)
from stream.collectors.venue import SubscribeReply, SubscriptionLimits

TOPICS = [f"allLiquidation.{n:04d}COINUSDT" for n in range(1_200)]


def test_assign_keeps_every_connection_under_the_bybit_character_limit() -> None:
    shards, left_out = assign([], TOPICS, BYBIT_LIMITS)
    assert left_out == []
    assert sorted(t for shard in shards for t in shard) == sorted(TOPICS)
    assert len(shards) >= 2
    for shard in shards:
        assert sum(topic_chars(t) for t in shard) <= 21_000
        assert sum(len(t) for t in shard) <= 21_000  # the literal reading too


def test_assign_is_stable_and_fills_free_room_first() -> None:
    limits = SubscriptionLimits(source="test", topics_per_connection=3)
    shards, _ = assign([], ["a", "b", "c", "d"], limits)
    assert shards == [{"a", "b", "c"}, {"d"}]
    shards, _ = assign(shards, ["a", "c", "d", "e", "f", "g"], limits)  # b delisted
    assert shards == [{"a", "c", "e"}, {"d", "f", "g"}]


def test_assign_leaves_out_what_exceeds_connections_per_ip() -> None:
    limits = SubscriptionLimits(source="test", topics_per_connection=2, connections_per_ip=2)
    shards, left_out = assign([], ["a", "b", "c", "d", "e"], limits)
    assert shards == [{"a", "b"}, {"c", "d"}] and left_out == ["e"]


def test_batches_respect_topics_per_message() -> None:
    assert batches(["c", "a", "b"], SubscriptionLimits(source="test", topics_per_message=2)) == [
        ["a", "b"],
        ["c"],
    ]
    assert len(batches(TOPICS[:25], BYBIT_LIMITS)) == 3  # 10 per request


def bybit_refusal(req_id: str, topic: str) -> SubscribeReply:
    text = (
        f'{{"success":false,"ret_msg":"error:handler not found,topic:{topic}",'
        f'"conn_id":"c","req_id":"{req_id}","op":"subscribe"}}'
    )
    reply = bybit_reply(text)
    assert reply is not None
    return reply


def test_a_refused_topic_is_retried_alone_once_and_the_rest_resent() -> None:
    state = SubscriptionState(BYBIT_LIMITS)
    wanted = {f"allLiquidation.S{n}USDT" for n in range(5)}
    (request,) = state.plan(wanted)
    bad = "allLiquidation.S3USDT"
    outcome = state.on_reply(bybit_refusal(request.req_id, bad))
    assert outcome is not None
    assert outcome.refused == [(bad, f"error:handler not found,topic:{bad}")]
    alone, rest = outcome.requests
    assert alone.topics == (bad,) and set(rest.topics) == wanted - {bad}
    assert state.acked == set()  # Bybit subscribed none of that batch
    ok = bybit_reply(f'{{"success":true,"ret_msg":"","req_id":"{rest.req_id}","op":"subscribe"}}')
    assert ok is not None
    state.on_reply(ok)
    assert state.acked == wanted - {bad}
    again = state.on_reply(bybit_refusal(alone.req_id, bad))
    assert again is not None and again.requests == []
    assert again.given_up == [(bad, f"error:handler not found,topic:{bad}")]
    assert state.rejected == {bad: f"error:handler not found,topic:{bad}"}
    assert state.plan(wanted) == []  # nothing left to ask for
    assert state.pending == {}


def test_a_refusal_naming_no_topic_retries_each_alone() -> None:
    state = SubscriptionState(BYBIT_LIMITS)
    (request,) = state.plan({"a", "b"})
    outcome = state.on_reply(SubscribeReply(ok=False, req_id=request.req_id, reason="busy"))
    assert outcome is not None
    assert sorted(r.topics for r in outcome.requests) == [("a",), ("b",)]


def test_unanswered_requests_count_as_refused() -> None:
    state = SubscriptionState(BYBIT_LIMITS)
    state.plan({"a"}, now_s=0.0)
    assert state.expire(now_s=5.0, timeout_s=10.0) == []
    (outcome,) = state.expire(now_s=10.0, timeout_s=10.0)
    assert outcome.refused == [("a", "no answer within 10s")]
    (retry,) = outcome.requests
    assert retry.topics == ("a",)


def test_replies_without_req_id_match_by_topic() -> None:
    limits = SubscriptionLimits(source="test", topics_per_message=1)
    state = SubscriptionState(limits)
    state.plan({"BTC-USD", "ETH-USD"})
    state.on_reply(SubscribeReply(op="subscribe", topics=("ETH-USD",)))
    assert state.acked == {"ETH-USD"}
    assert [r.topics for r in state.pending.values()] == [("BTC-USD",)]


def test_plan_unsubscribes_what_is_no_longer_listed() -> None:
    state = SubscriptionState(BYBIT_LIMITS)
    (request,) = state.plan({"a", "b"})
    state.on_reply(SubscribeReply(req_id=request.req_id))
    (unsubscribe,) = state.plan({"a"})
    assert (unsubscribe.op, unsubscribe.topics) == ("unsubscribe", ("b",))
    state.on_reply(SubscribeReply(req_id=unsubscribe.req_id, op="unsubscribe"))
    assert state.acked == {"a"}


def test_a_late_answer_to_an_expired_request_acknowledges_nothing() -> None:
    state = SubscriptionState(BYBIT_LIMITS)
    (first,) = state.plan({"a"}, now_s=0.0)
    (expired,) = state.expire(now_s=10.0, timeout_s=10.0)
    (retry,) = expired.requests
    assert state.on_reply(SubscribeReply(req_id=first.req_id)) is None
    assert state.acked == set() and list(state.pending) == [retry.req_id]


def test_a_queued_request_neither_times_out_nor_takes_an_answer_until_sent() -> None:
    """Behind the venue's pacing a request may wait seconds: its answer clock starts when it
    leaves, and an answer naming no request (the oldest waiting is meant) skips unsent ones."""
    state = SubscriptionState(SubscriptionLimits(source="test"))
    first, second = state.plan({"a", "b"}, now_s=0.0)
    state.queued([first, second])
    assert state.on_reply(SubscribeReply(ok=True), now_s=1.0) is None  # nothing sent yet
    assert state.expire(now_s=30.0, timeout_s=10.0) == []
    state.sent(first.req_id, now_s=30.0)
    assert state.on_reply(SubscribeReply(ok=True), now_s=31.0) is not None
    assert state.acked == {"a"}
    state.sent(second.req_id, now_s=32.0)
    assert state.expire(now_s=41.0, timeout_s=10.0) == []
    (late,) = state.expire(now_s=42.0, timeout_s=10.0)
    assert late.refused == [("b", "no answer within 10s")]


def test_a_topic_refused_on_the_last_connection_is_tried_once_alone_and_stays_reported() -> None:
    state = SubscriptionState(BYBIT_LIMITS, refused={"allLiquidation.BADUSDT": "not found"})
    wanted = {f"allLiquidation.S{n}USDT" for n in range(3)} | {"allLiquidation.BADUSDT"}
    assert state.rejected == {"allLiquidation.BADUSDT": "not found"}  # reported from the start
    alone, batch = state.plan(wanted)
    assert alone.topics == ("allLiquidation.BADUSDT",)  # its refusal costs no other topic
    assert "allLiquidation.BADUSDT" not in batch.topics and len(batch.topics) == 3
    outcome = state.on_reply(bybit_refusal(alone.req_id, "allLiquidation.BADUSDT"))
    assert outcome is not None and outcome.requests == []  # refused again: given up
    assert outcome.given_up == [
        ("allLiquidation.BADUSDT", "error:handler not found,topic:allLiquidation.BADUSDT")
    ]
    assert state.plan(wanted) == []


def test_a_topic_refused_before_and_accepted_now_leaves_the_refused() -> None:
    state = SubscriptionState(BYBIT_LIMITS, refused={"allLiquidation.BADUSDT": "not found"})
    (alone,) = state.plan({"allLiquidation.BADUSDT"})
    assert state.on_reply(SubscribeReply(req_id=alone.req_id)) is not None
    assert state.acked == {"allLiquidation.BADUSDT"} and state.rejected == {}


def test_the_pacer_spaces_messages_across_every_connection_of_a_feed() -> None:
    """20 messages a second per IP: two connections asking at once get slots 50 ms apart."""
    pacer = Pacer(20.0)
    assert pacer.slot(now_s=100.0) == 0.0  # the first connection sends at once
    assert pacer.slot(now_s=100.0) == pytest.approx(0.05)  # the second waits its turn
    assert pacer.slot(now_s=100.01) == pytest.approx(0.09)
    assert pacer.slot(now_s=200.0) == 0.0  # after a quiet spell, at once again
    assert Pacer(None).slot(now_s=1.0) == Pacer(None).slot(now_s=1.0) == 0.0
