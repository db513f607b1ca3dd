"""The trading bot's configuration: config/trading.json, overridden by STOCK_TRADING_* variables.

Top-level fields are the defaults of every symbol; `symbols` lists the traded symbols, each with
its strategies (name -> parameters; `{}` = the strategy's defaults) and optional overrides of the
risk settings. A symbol without `strategies` runs `default_strategies`. When `symbols` is
empty the universe (config/symbols.json) runs `default_strategies`. The webhook URL is a secret:
set it with STOCK_TRADING_WEBHOOK_URL rather than in the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, model_validator
from pydantic_settings import SettingsConfigDict

from stock_assets.lib.settings import ENV_FILE, JsonBackedSettings
from stock_assets.lib.trading.backtest import BacktestConfig
from stock_assets.lib.trading.broker.config import BrokerConfig
from stock_assets.lib.trading.strategies import STRATEGIES, StrategyParams, default_params


class _StrategySetBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def items(self) -> list[tuple[str, StrategyParams]]:
        return [
            (name, params)
            for name in type(self).model_fields
            if (params := getattr(self, name)) is not None
        ]


# The strategies a symbol runs, one optional field per registered strategy (typed by its params
# dataclass); a missing key means the strategy is not run. Built from the engine's registry, so
# registering a strategy is all it takes to configure it.
if TYPE_CHECKING:
    StrategySet = _StrategySetBase
else:
    StrategySet = create_model(
        "StrategySet",
        __base__=_StrategySetBase,
        __module__=__name__,
        **{name: (s.params_type | None, None) for name, s in STRATEGIES.items()},
    )
ALL_DEFAULT_STRATEGIES = StrategySet(**{n: s.default_params() for n, s in STRATEGIES.items()})


class SymbolConfig(BaseModel):
    """One symbol: its strategies and optional overrides of the top-level risk settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategies: StrategySet | None = None
    commission: float | None = Field(default=None, ge=0, lt=1)
    long_only: bool | None = None
    sizing: Literal["all_in", "fixed_fraction"] | None = None
    fraction: float | None = Field(default=None, gt=0, le=1)
    stop_loss: float | None = Field(default=None, gt=0, lt=1)
    take_profit: float | None = Field(default=None, gt=0)


class AlertRule(BaseModel):
    """A price-movement rule evaluated on each new daily bar (README, "Trading bot")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_\-]+$")
    kind: Literal["percent_move", "level_cross"]
    symbols: tuple[str, ...] | None = None  # None = every symbol (percent_move only)
    direction: Literal["up", "down", "both"] = "both"
    window: int = Field(1, ge=1, le=250)  # sessions, percent_move only
    threshold_pct: float | None = Field(
        default=None, gt=0
    )  # percent_move: |move| >= threshold_pct %
    level: float | None = Field(default=None, gt=0)  # level_cross: the close crosses this price

    @model_validator(mode="after")
    def _complete(self) -> AlertRule:
        if self.kind == "percent_move" and self.threshold_pct is None:
            raise ValueError(f"rule {self.name}: percent_move needs threshold_pct")
        if self.kind == "level_cross" and (self.level is None or not self.symbols):
            raise ValueError(f"rule {self.name}: level_cross needs level and symbols")
        return self

    def canonical(self) -> str:
        """The rule's definition as canonical JSON (part of every alert id it produces)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class BookEntry:
    """One configured (symbol, strategy) with its parameters and backtest settings."""

    symbol: str
    strategy: str
    params: StrategyParams
    config: BacktestConfig

    def params_json(self) -> dict[str, Any]:
        return {"params": asdict(self.params), "backtest": asdict(self.config)}

    def params_hash(self) -> str:
        """Stable hash of the parameters and settings: the backtest's natural key part."""
        payload = json.dumps(self.params_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{self.strategy}|{payload}".encode()).hexdigest()[:16]

    @property
    def uses_default_params(self) -> bool:
        return self.params == default_params(self.strategy)


class TradingSettings(JsonBackedSettings):
    """Strategies per symbol, execution and risk settings, paper account and alert rules."""

    json_name: ClassVar[str] = "trading"
    json_required: ClassVar[bool] = False
    model_config = SettingsConfigDict(
        env_prefix="STOCK_TRADING_", env_file=ENV_FILE, extra="ignore"
    )

    initial_cash: float = Field(100_000.0, gt=0)
    commission: float = Field(0.0005, ge=0, lt=1)
    long_only: bool = True
    sizing: Literal["all_in", "fixed_fraction"] = "all_in"
    fraction: float = Field(1.0, gt=0, le=1)
    stop_loss: float | None = Field(default=None, gt=0, lt=1)
    take_profit: float | None = Field(default=None, gt=0)
    default_strategies: StrategySet = ALL_DEFAULT_STRATEGIES
    symbols: dict[str, SymbolConfig] = Field(default_factory=dict)

    paper_account_prefix: str = Field("paper", pattern=r"^[a-z0-9_\-]+$")
    paper_position_fraction: float = Field(0.2, gt=0, le=1)

    alert_rules: tuple[AlertRule, ...] = ()
    webhook_url: SecretStr | None = None
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_retries: int = Field(2, ge=0, le=10)
    webhook_retry_hours: float = Field(24.0, ge=0)
    broker: BrokerConfig = BrokerConfig()  # automated orders (docs/broker.md)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> TradingSettings:
        names = [r.name for r in self.alert_rules]
        if len(set(names)) != len(names):
            raise ValueError("alert_rules: rule names must be unique")
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> TradingSettings:
        """Settings from an explicit JSON file (instead of config/trading.json) + environment."""
        file = Path(path)
        scoped: type[TradingSettings] = type(
            cls.__name__,
            (cls,),
            {
                "__module__": cls.__module__,
                "json_required": True,
                "json_path": classmethod(lambda _cls: file),
            },
        )
        return scoped.load()

    def book(self, universe: tuple[str, ...] = ()) -> list[BookEntry]:
        """Every configured (symbol, strategy), symbols upper-cased, in a stable order."""
        symbols = self.symbols or {s: SymbolConfig() for s in universe}
        entries = []
        for raw_symbol in sorted(symbols):
            sym = symbols[raw_symbol]
            config = BacktestConfig(
                initial_cash=self.initial_cash,
                commission=_pick(sym.commission, self.commission),
                long_only=_pick(sym.long_only, self.long_only),
                sizing=_pick(sym.sizing, self.sizing),
                fraction=_pick(sym.fraction, self.fraction),
                stop_loss=_pick(sym.stop_loss, self.stop_loss),
                take_profit=_pick(sym.take_profit, self.take_profit),
            )
            for strategy, params in (sym.strategies or self.default_strategies).items():
                entries.append(BookEntry(raw_symbol.upper(), strategy, params, config))
        return entries

    def paper_account_id(self, strategy: str) -> str:
        """Paper trading keeps one account per strategy, so a symbol has one owner per account."""
        return f"{self.paper_account_prefix}-{strategy}"


def _pick(override: Any, default: Any) -> Any:
    return default if override is None else override
