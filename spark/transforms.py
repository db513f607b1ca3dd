"""Pure DataFrame → DataFrame transforms shared by the streaming job and the batch work.

The wire format is stock_assets/lib/marketdata.py's: JSON `{"type": "tick", "symbol", "ts_us"
(epoch µs UTC), "price", "size", "source", "seq", "schema_version": 1}`. `parse_ticks` keeps every
input row and says why a row is unusable in `error` (null for a good tick): the rules are
`marketdata.CONTRACT`'s, the same the Python loader applies, so callers can count and
dead-letter bad rows instead of dropping them.

Bars: 1-minute tumbling windows [start, start + 1 min) on event time. open/close are the prices of
the earliest/latest tick ordered by (ts_us, seq) — `min_by`/`max_by` on that struct, because
`first`/`last` in a Spark aggregation depend on row order, which a shuffle does not keep.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    VariantType,
)

from stock_assets.lib import tables
from stock_assets.lib.marketdata import CONTRACT, TickContract

BAR_WINDOW = "1 minute"
US_PER_MINUTE = 60_000_000
CORRUPT = "_corrupt_record"  # from_json's PERMISSIVE mode puts an unparsable record here

# symbol and source are read as VARIANT: a plain StringType field would turn a JSON number or
# object into its text (Jackson's coercion), where the Python decoder rejects anything but a
# JSON string; schema_of_variant says which JSON type arrived.
TICK_SCHEMA = StructType(
    [
        StructField("type", StringType()),
        StructField("symbol", VariantType()),
        StructField("ts_us", LongType()),
        StructField("price", DoubleType()),
        StructField("size", DoubleType()),
        StructField("source", VariantType()),
        StructField("seq", LongType()),
        StructField("schema_version", LongType()),
        StructField(CORRUPT, StringType()),
    ]
)
# as strict as msgspec: no NaN/Infinity literals or strings, no single quotes (Spark's defaults
# allow both); comments, unquoted names, leading zeros and raw control characters are off anyway
JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
    "allowNonNumericNumbers": "false",
    "allowSingleQuotes": "false",
}
JSON_WS = "[ \\t\\n\\r]"
# Jackson stops after the first JSON value: text after the object must be whitespace (Python's
# decoder rejects trailing data)
TRAILING_OK = f"\\}}{JSON_WS}*\\z"
# a JSON string literal, escapes included (possessive: no backtracking); outside of them only
# structure, numbers and literals remain
JSON_STRING = r'(?s)"(?:[^"\\]|\\.)*+"'
# a \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or a low one alone: Jackson
# accepts lone surrogates in fields it skips, msgspec rejects them anywhere
_HEX = "[0-9a-fA-F]"
LONE_SURROGATE = (
    f"(?:^|[^\\\\])(?:\\\\\\\\)*(?:"
    f"\\\\u[dD][89abAB]{_HEX}{{2}}(?!\\\\u[dD][c-fC-F]{_HEX}{{2}})"
    f"|(?<!\\\\u[dD][89abAB]{_HEX}{{2}})\\\\u[dD][c-fC-F]{_HEX}{{2}})"
)
TICK_COLUMNS = ("symbol", "ts", "ts_us", "price", "size", "source", "seq")
BAR_COLUMNS = tables.BARS_1M.names  # market.bars_1m and market.live_bars_1m (lib/tables.py)


def _finite(c: Column) -> Column:
    return c.isNotNull() & ~F.isnan(c) & (F.abs(c) != F.lit(float("inf")))


def _full_match(c: Column, pattern: str) -> Column:
    """Java regex over the whole string (`find` semantics otherwise; \\z: the very end)."""
    return c.rlike(f"^(?:{pattern})\\z")


def _show(c: Column) -> Column:
    text = F.coalesce(c.cast("string"), F.lit("null"))
    return F.when(F.length(text) > 40, F.concat(F.substring(text, 1, 40), F.lit("…"))).otherwise(
        text
    )


def variant_string(v: Column) -> Column:
    """The JSON string in a VARIANT field, null when the field held anything else."""
    return F.when(F.schema_of_variant(v) == "STRING", F.variant_get(v, "$", "string"))


def one_json_value(payload: Column) -> Column:
    """False when text follows the first JSON object or array, e.g. `{…}{…}` or `{…} "}"}`.

    Jackson (from_json, parse_json) reads the first value and ignores the rest, and TRAILING_OK
    cannot see that `{…}{…}` ends with another object. String literals are removed, the brackets
    kept, and their depth folded: the first value ends where the depth first comes back to 0,
    which must be the last bracket. Exact at any nesting depth (a payload is ≤ 1000 bytes).
    """
    brackets = F.regexp_replace(F.regexp_replace(payload, JSON_STRING, ""), "[^\\[\\]{}]", "")

    def step(acc: Column, ch: Column) -> Column:
        depth = acc["depth"] + F.when(ch.isin("{", "["), 1).otherwise(-1)
        closes = acc["closes"] + F.when(depth <= 0, 1).otherwise(0)
        return F.struct(depth.alias("depth"), closes.alias("closes"))

    state = F.aggregate(
        F.filter(F.split(brackets, ""), lambda ch: ch != ""),
        F.struct(F.lit(0).alias("depth"), F.lit(0).alias("closes")),
        step,
    )
    return F.when(brackets == "{}", F.lit(True)).otherwise(  # a flat object: the usual tick
        (state["depth"] == 0) & (state["closes"] == 1)
    )


def tick_error(t: Column, value: Column, c: TickContract = CONTRACT) -> Column:
    """Why Kafka `value` (parsed as `t`) is not a valid tick, null when it is.

    Derived from `marketdata.CONTRACT` like the Python check; property-tested to accept and reject
    the same payloads (the first failing rule may differ for a payload breaking several).
    """
    payload = value.cast("string")
    symbol, source = variant_string(t["symbol"]), variant_string(t["source"])
    price, size = t["price"], t["size"]
    return (
        F.when(value.isNull(), F.lit("malformed JSON: no value"))
        .when(
            F.octet_length(value) > c.payload_max_bytes,
            F.concat(F.lit("oversize payload: "), F.octet_length(value).cast("string")),
        )
        .when(
            ~F.is_valid_utf8(value)
            | t.isNull()
            | (t[CORRUPT].isNotNull() & t["type"].isNull())
            | ~payload.rlike(TRAILING_OK)
            | ~one_json_value(payload)
            | payload.rlike(LONE_SURROGATE),
            F.lit("malformed JSON"),
        )
        .when(t[CORRUPT].isNotNull(), F.lit("schema violation: a field has the wrong type"))
        .when(
            t["type"].isNull() | (t["type"] != "tick"),
            F.concat(F.lit("not a tick: type="), _show(t["type"])),
        )
        .when(
            t["symbol"].isNull()
            | t["source"].isNull()
            | symbol.isNull()
            | source.isNull()
            | t["ts_us"].isNull()
            | price.isNull()
            | size.isNull()
            | t["seq"].isNull()
            | t["schema_version"].isNull(),
            F.lit("schema violation: a field is missing, null or not of its type"),
        )
        .when(
            ~t["schema_version"].isin(*c.schema_versions),
            F.concat(F.lit("unsupported schema_version "), _show(t["schema_version"])),
        )
        .when(~_full_match(symbol, c.symbol_pattern), F.concat(F.lit("bad symbol "), _show(symbol)))
        .when(~_full_match(source, c.source_pattern), F.concat(F.lit("bad source "), _show(source)))
        .when(
            ~t["ts_us"].between(c.ts_us_min, c.ts_us_max),
            F.concat(F.lit("bad timestamp "), _show(t["ts_us"])),
        )
        .when(
            ~_finite(price) | (price <= 0) | (price > c.price_max),
            F.concat(F.lit("bad price "), _show(price)),
        )
        .when(
            ~_finite(size) | (size < 0) | (size > c.size_max),
            F.concat(F.lit("bad size "), _show(size)),
        )
        .when(~t["seq"].between(c.seq_min, c.seq_max), F.concat(F.lit("bad seq "), _show(t["seq"])))
    )


def parse_ticks(raw: DataFrame) -> DataFrame:
    """Kafka rows (binary `value`) → TICK_COLUMNS + `error` + `payload` (the value as text).

    Other input columns (e.g. Kafka `key`, `partition`, `offset`) are kept. Malformed JSON is a
    corrupt record in from_json's PERMISSIVE mode: `error` says so, the tick columns are null.
    """
    payload = F.col("value").cast("string")
    parsed = raw.withColumn("payload", payload).withColumn(
        "_t",
        F.from_json(F.col("payload"), TICK_SCHEMA, JSON_OPTIONS),
    )
    t = F.col("_t")
    return parsed.select(
        *[c for c in raw.columns if c != "value"],
        variant_string(t["symbol"]).alias("symbol"),
        F.timestamp_micros(t["ts_us"]).alias("ts"),
        t["ts_us"].alias("ts_us"),
        t["price"].alias("price"),
        t["size"].alias("size"),
        variant_string(t["source"]).alias("source"),
        t["seq"].alias("seq"),
        tick_error(t, F.col("value")).alias("error"),
        F.col("payload"),
        F.col("value").alias("raw_value"),
    )


def valid_ticks(parsed: DataFrame) -> DataFrame:
    """The good rows of `parse_ticks`' output, TICK_COLUMNS only."""
    return parsed.where(F.col("error").isNull()).select(*TICK_COLUMNS)


def invalid_ticks(parsed: DataFrame) -> DataFrame:
    """The bad rows of `parse_ticks`' output with their reason and raw payload."""
    return parsed.where(F.col("error").isNotNull()).drop(*TICK_COLUMNS)


def bounded_dead_letters(invalid: DataFrame, stage: str) -> DataFrame:
    """`invalid_ticks` rows → Kafka (key, value, headers) rows bounded like the Python loader's.

    The value keeps its first DLQ_MAX_VALUE_BYTES bytes; sha256 and length of the original go in
    headers (marketdata.DLQ_MAX_*), so the write never meets the broker's message size limit.
    """
    from stock_assets.lib.marketdata import (
        DLQ_MAX_KEY_BYTES,
        DLQ_MAX_REASON_CHARS,
        DLQ_MAX_VALUE_BYTES,
    )

    def header(name: str, value: Column) -> Column:
        return F.struct(F.lit(name).alias("key"), value.cast("binary").alias("value"))

    raw = F.coalesce(F.col("raw_value"), F.lit(b"").cast("binary"))
    length = F.octet_length(raw)
    reason = F.col("error")
    headers = F.array(
        header(
            "dlq.reason",
            F.when(
                F.length(reason) > DLQ_MAX_REASON_CHARS,
                F.concat(F.substring(reason, 1, DLQ_MAX_REASON_CHARS), F.lit("…")),
            ).otherwise(reason),
        ),
        header("dlq.payload.sha256", F.sha2(raw, 256)),
        header("dlq.payload.length", length.cast("string")),
        header(
            "dlq.payload.truncated",
            F.when(length > DLQ_MAX_VALUE_BYTES, F.lit("true")).otherwise(F.lit("false")),
        ),
        header("dlq.stage", F.lit(stage)),
        header("dlq.source.topic", F.col("topic")),
        header("dlq.source.partition", F.col("partition").cast("string")),
        header("dlq.source.offset", F.col("offset").cast("string")),
    )
    return invalid.select(
        F.substring(F.col("key"), 1, DLQ_MAX_KEY_BYTES).alias("key"),
        F.when(F.col("raw_value").isNotNull(), F.substring(raw, 1, DLQ_MAX_VALUE_BYTES)).alias(
            "value"
        ),
        headers.alias("headers"),
    )


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
