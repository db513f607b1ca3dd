"""Automated trading through a broker: interface, simulator, Alpaca adapter, order lifecycle,
risk limits and the kill switch (docs/broker.md). Modules are imported where used: alpaca-py
loads only when the Alpaca broker is built."""
