"""Pure DataFrame → DataFrame transforms shared by the streaming job and the batch work.

The wire format is stock_assets/lib/marketdata.py's: JSON `{"type": "tick", "symbol", "ts_us"
(epoch µs UTC), "price", "size", "source", "seq", "schema_version": 1}`. `parse_ticks` keeps every
input row and says why a row is unusable in `error` (null for a good tick), mirroring
`marketdata.validate`, so callers can count and dead-letter bad rows instead of dropping them.

Bars: 1-minute tumbling windows [start, start + 1 min) on event time. open/close are the prices of
the earliest/latest tick ordered by (ts_us, seq) — `min_by`/`max_by` on that struct, because
`first`/`last` in a Spark aggregation depend on row order, which a shuffle does not keep.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

SCHEMA_VERSION = 1  # stock_assets.lib.marketdata.SCHEMA_VERSION
MAX_SYMBOL_LEN = 16  # stock_assets.lib.marketdata.MAX_SYMBOL_LEN
BAR_WINDOW = "1 minute"
US_PER_MINUTE = 60_000_000
CORRUPT = "_corrupt_record"  # from_json's PERMISSIVE mode puts an unparsable record here

TICK_SCHEMA = StructType(
    [
        StructField("type", StringType()),
        StructField("symbol", StringType()),
        StructField("ts_us", LongType()),
        StructField("price", DoubleType()),
        StructField("size", DoubleType()),
        StructField("source", StringType()),
        StructField("seq", LongType()),
        StructField("schema_version", IntegerType()),
        StructField(CORRUPT, StringType()),
    ]
)
TICK_COLUMNS = ("symbol", "ts", "ts_us", "price", "size", "source", "seq")
BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count")


def _finite(c: Column) -> Column:
    return c.isNotNull() & ~F.isnan(c) & (F.abs(c) != F.lit(float("inf")))


def tick_error(t: Column) -> Column:
    """Why the parsed struct `t` is not a valid tick (null when it is); first failing check wins."""
    symbol = t["symbol"]
    return (
        F.when(t.isNull() | (t[CORRUPT].isNotNull() & t["type"].isNull()), F.lit("malformed JSON"))
        .when(t[CORRUPT].isNotNull(), F.lit("schema violation: a field has the wrong type"))
        .when(
            t["type"].isNull() | (t["type"] != "tick"),
            F.concat(F.lit("not a tick: type="), F.coalesce(t["type"], F.lit("null"))),
        )
        .when(
            t["schema_version"].isNull() | (t["schema_version"] != SCHEMA_VERSION),
            F.concat(
                F.lit("unsupported schema_version "),
                F.coalesce(t["schema_version"].cast("string"), F.lit("null")),
            ),
        )
        .when(
            symbol.isNull()
            | (F.length(symbol) == 0)
            | (F.length(symbol) > MAX_SYMBOL_LEN)
            | (symbol != F.upper(symbol)),
            F.concat(F.lit("bad symbol "), F.coalesce(symbol, F.lit("null"))),
        )
        .when(
            t["ts_us"].isNull() | (t["ts_us"] <= 0),
            F.concat(F.lit("bad timestamp "), F.coalesce(t["ts_us"].cast("string"), F.lit("null"))),
        )
        .when(
            ~_finite(t["price"]) | ~_finite(t["size"]) | (t["size"] < 0),
            F.lit("non-finite price or bad size"),
        )
        .when(t["seq"].isNull() | t["source"].isNull(), F.lit("schema violation: missing field"))
    )


def parse_ticks(raw: DataFrame) -> DataFrame:
    """Kafka rows (binary `value`) → TICK_COLUMNS + `error` + `payload` (the value as text).

    Other input columns (e.g. Kafka `key`, `partition`, `offset`) are kept. Malformed JSON is a
    corrupt record in from_json's PERMISSIVE mode: `error` says so, the tick columns are null.
    """
    payload = F.col("value").cast("string")
    parsed = raw.withColumn("payload", payload).withColumn(
        "_t",
        F.from_json(
            F.col("payload"),
            TICK_SCHEMA,
            {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT},
        ),
    )
    t = F.col("_t")
    return parsed.select(
        *[c for c in raw.columns if c != "value"],
        t["symbol"].alias("symbol"),
        F.timestamp_micros(t["ts_us"]).alias("ts"),
        t["ts_us"].alias("ts_us"),
        t["price"].alias("price"),
        t["size"].alias("size"),
        t["source"].alias("source"),
        t["seq"].alias("seq"),
        tick_error(t).alias("error"),
        F.col("payload"),
    )


def valid_ticks(parsed: DataFrame) -> DataFrame:
    """The good rows of `parse_ticks`' output, TICK_COLUMNS only."""
    return parsed.where(F.col("error").isNull()).select(*TICK_COLUMNS)


def invalid_ticks(parsed: DataFrame) -> DataFrame:
    """The bad rows of `parse_ticks`' output with their reason and raw payload."""
    return parsed.where(F.col("error").isNotNull()).drop(*TICK_COLUMNS)


def window_end_us(ts_us: Column) -> Column:
    """End (exclusive, epoch µs) of the 1-minute window holding `ts_us`, as Spark's window()."""
    return (F.floor(ts_us / US_PER_MINUTE) + 1) * US_PER_MINUTE


def bar_aggregations() -> list[Column]:
    """OHLCV + VWAP + trade count of one group of ticks (vwap = mean price when volume is 0)."""
    order = F.struct("ts_us", "seq")
    volume = F.sum("size")
    return [
        F.min_by("price", order).alias("open"),
        F.max("price").alias("high"),
        F.min("price").alias("low"),
        F.max_by("price", order).alias("close"),
        volume.alias("volume"),
        F.when(volume > 0, F.sum(F.col("price") * F.col("size")) / volume)
        .otherwise(F.avg("price"))
        .alias("vwap"),
        F.count(F.lit(1)).cast("int").alias("trade_count"),
    ]


def bars_1m(ticks: DataFrame) -> DataFrame:
    """Ticks (TICK_COLUMNS) → 1-minute OHLCV bars (BAR_COLUMNS), `ts` = window start.

    On a streaming DataFrame call `withWatermark("ts", ...)` first: the window column is a
    grouping key, so Spark evicts closed windows and drops ticks behind the watermark.
    """
    return (
        ticks.groupBy("symbol", F.window("ts", BAR_WINDOW).alias("window"))
        .agg(*bar_aggregations())
        .select("symbol", F.col("window.start").alias("ts"), *BAR_COLUMNS[2:])
    )
