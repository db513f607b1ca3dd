"""The trading bot's configuration as a Dagster resource (read at run time, never at import)."""

import dagster as dg

from stock_assets.defs.runs import settings_rejected
from stock_assets.lib import universe
from stock_assets.lib.settings import ConfigError
from stock_assets.lib.trading.config import BookEntry, TradingSettings


class TradingConfigResource(dg.ConfigurableResource):
    """config/trading.json + STOCK_TRADING_*; `path` reads another JSON file instead."""

    path: str | None = None

    def settings(self) -> TradingSettings:
        """The settings; a bad file fails the step at once (a ConfigError is not retried)."""
        try:
            if self.path is None:
                return TradingSettings.load()
            return TradingSettings.from_file(self.path)
        except ConfigError as exc:
            raise settings_rejected(exc) from exc

    def book(self, settings: TradingSettings) -> list[BookEntry]:
        """Configured (symbol, strategy) pairs; the symbol universe when none are listed."""
        return settings.book(() if settings.symbols else universe.load_symbols())
