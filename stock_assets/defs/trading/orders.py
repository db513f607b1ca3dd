"""The orders asset: new signals -> orders through the configured broker, then reconciliation.

It runs in the `trading` job with the paper portfolio (the `trading_after_signals` sensor,
after new signals), plus the `orders_market_open` schedule at 09:35 New York on weekdays:
signals are computed on daily bars after the close, and the market-hours limit holds live
orders until a session is open (defs/trading/sensors.py). Dry-run by default (orders
computed, stored as `dry_run` and shown; nothing sent); live only with broker.mode = "live"
(config/trading.json or STOCK_BROKER_MODE). alpaca-py is imported only when the Alpaca
broker is built.
"""

import dagster as dg

from stock_assets.defs.kernel import BARS_DAILY, ORDERS, SIGNALS
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib.settings import ConfigError
from stock_assets.lib.trading.broker.base import BrokerError
from stock_assets.lib.trading.broker.config import BrokerEnv
from stock_assets.lib.trading.broker.runner import make_broker, run_orders

RECONCILED = "broker_positions_match_warehouse"
# Transient broker/warehouse outages: the step again after ~5, 10, 20 s; a reject is no failure.
RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL)


@dg.asset(
    key=ORDERS,
    deps=[SIGNALS, BARS_DAILY],
    group_name="trading",
    retry_policy=RETRY,
    kinds={"python", "timescaledb"},
    check_specs=[dg.AssetCheckSpec(RECONCILED, asset=ORDERS)],
)
def orders(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trading_config: TradingConfigResource,
) -> dg.MaterializeResult:
    """Broker orders from the latest signals (dry-run unless live), risk-checked and reconciled."""
    settings = trading_config.settings()
    config = BrokerEnv().apply(settings.broker)
    book = trading_config.book(settings)
    with warehouse.connection() as conn:
        try:
            broker = make_broker(
                config,
                conn,
                initial_cash=settings.initial_cash,
                commission=settings.commission,
                symbols=sorted({e.symbol for e in book}),
            )
        except ConfigError as exc:  # missing keys: a retry cannot help
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        try:
            report = run_orders(conn, broker, config, book)
        except BrokerError as exc:  # bad keys or request: a retry cannot help
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
    if report.blocked:
        context.log.warning(f"blocked by risk limits: {', '.join(report.blocked)}")
    drift = {d.symbol: {"broker": d.broker, "warehouse": d.warehouse} for d in report.drift}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(report.decisions.values()),
            "source": report.source,
            "mode": report.mode,
            "kill_switch": report.kill_switch,
            "intents": report.intents,
            "decisions": report.decisions,
            "cancelled": report.cancelled,
            "fills_recorded": report.fills,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=RECONCILED,
                passed=not report.drift,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"drift": drift, "source": report.source},
            )
        ],
    )
