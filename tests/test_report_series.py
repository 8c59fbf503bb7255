"""`liqstream report --series`: the history series offline, hand-computed."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from stream.cli import main
from stream.schema import make_event

T0 = 1_700_006_400_000  # 2023-11-15T00:00:00Z


def line(n: int, exchange: str, coin: str, side: str, notional: float, ts: int) -> str:
    price = {"BTC": 100_000.0, "ETH": 4_000.0}[coin]
    event = make_event(
        id=f"e{n}",
        exchange=exchange,
        symbol=f"{coin}USDT",
        coin=coin,
        quote="USDT",
        contract_type="linear",
        side=side,
        price=price,
        quantity=notional / price,
        notional_usd=notional,
        ts=ts,
        received_ts=ts + 10,
    )
    return event.to_json().decode()


LINES = [
    line(1, "binance", "BTC", "long", 0.1, T0 + 1_000),
    line(2, "binance", "BTC", "long", 0.2, T0 + 61_000),  # 0.1 + 0.2: exactly 0.3 here
    line(3, "okx", "ETH", "short", 1_234.567891, T0 + 299_999),
    line(4, "okx", "BTC", "short", 50_000.0, T0 + 600_000),  # the third 5m interval
    line(2, "binance", "BTC", "long", 0.2, T0 + 61_000),  # a repeat: counted once
    "not json",
]


def run(*args: str) -> tuple[int, dict | None, str]:
    result = CliRunner().invoke(main, ["report", *args], input="\n".join(LINES) + "\n")
    out = orjson.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, out, result.stderr


def test_series_of_the_market_a_coin_and_an_exchange() -> None:
    code, market, stderr = run("--series", "5m")
    assert code == 0
    assert '"reason":"duplicate"' in stderr and '"line":6' in stderr
    assert (market["interval"], market["interval_ms"]) == ("5m", 300_000)
    assert (market["from"], market["to"]) == (T0, T0 + 900_000)  # the events' span, aligned
    first, second, third = market["buckets"]
    assert first["start"] == T0
    assert (first["long_usd"], first["short_usd"]) == (0.3, 1_234.567891)
    assert first["total_usd"] == 1_234.867891
    assert (first["count"], first["long_count"], first["short_count"]) == (3, 2, 1)
    assert first["largest"]["id"] == "e3"
    assert second == {
        "start": T0 + 300_000,
        "long_usd": 0.0,
        "short_usd": 0.0,
        "total_usd": 0.0,
        "count": 0,
        "long_count": 0,
        "short_count": 0,
        "largest": None,
    }
    assert (third["short_usd"], third["largest"]["notional_usd"]) == (50_000.0, 50_000.0)

    code, btc, _ = run(
        "--series", "1m", "--coin", "xbt", "--from", str(T0), "--to", str(T0 + 120_000)
    )
    assert code == 0
    assert btc["coin"] == "BTC" and btc["exchange"] is None
    assert [b["long_usd"] for b in btc["buckets"]] == [0.1, 0.2]

    code, okx, _ = run("--series", "1h", "--exchange", "OKX")
    assert code == 0
    (hour,) = okx["buckets"]
    assert (hour["short_usd"], hour["short_count"], hour["long_count"]) == (51_234.567891, 2, 0)


def test_a_bad_interval_is_a_usage_error() -> None:
    code, _, stderr = run("--series", "7s")
    assert code == 2
    assert "interval '7s'" in stderr
