"""Broker settings: the `broker` block of config/trading.json, STOCK_BROKER_* overrides, keys.

Live trading needs two explicit switches: `source` = "alpaca" (the simulator is the default) and
`mode` = "live" (the default "dry_run" computes and stores the orders without sending any), each
set in config/trading.json or with STOCK_BROKER_SOURCE / STOCK_BROKER_MODE. The Alpaca keys come
only from APCA_API_KEY_ID / APCA_API_SECRET_KEY (Alpaca's own variable names) or from
`alpaca_key_id` / `alpaca_secret_key` in config/api_keys.json, held as SecretStr.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stock_assets.lib.settings import ENV_FILE, ConfigError, JsonBackedSettings


class RiskLimits(BaseModel):
    """Checked before every order; an order that reduces a position passes the exposure limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_position_value: float = Field(default=25_000.0, gt=0)  # |shares x price| per symbol, after
    max_gross_exposure: float = Field(default=100_000.0, gt=0)  # sum of |shares x price|, after
    max_orders_per_day: int = Field(default=20, ge=0)  # orders sent per New York day and source
    max_daily_loss: float = Field(default=2_000.0, gt=0)  # equity below the last close's equity
    market_hours: bool = True  # only while the exchange calendar's session is open


class BrokerConfig(BaseModel):
    """The `broker` block of config/trading.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["simulator", "alpaca"] = "simulator"
    mode: Literal["dry_run", "live"] = "dry_run"
    kill_switch: bool = False  # engaged from config: cancels open orders, blocks new ones
    position_fraction: float = Field(
        default=0.1, gt=0, le=1
    )  # of equity per (symbol, strategy) long
    whole_shares: bool = True
    rebalance_band: float = Field(
        default=0.1, ge=0, lt=1
    )  # resize a same-side position only beyond it
    paper: bool = True  # Alpaca paper account (false = the live endpoint)
    base_url: str | None = None  # REST URL override (a local server in tests)
    stream_url: str | None = None  # trade_updates websocket URL override
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    base_delay_s: float = Field(default=1.0, ge=0)
    max_delay_s: float = Field(default=30.0, ge=0)
    stream_wait_s: float = Field(default=2.0, ge=0)  # how long a run listens to trade_updates
    drift_tolerance: float = Field(default=1e-6, ge=0)  # shares
    risk: RiskLimits = Field(default_factory=RiskLimits)


class BrokerEnv(BaseSettings):
    """STOCK_BROKER_SOURCE / _MODE / _KILL_SWITCH override the file (unset = keep the file's)."""

    model_config = SettingsConfigDict(env_prefix="STOCK_BROKER_", env_file=ENV_FILE, extra="ignore")

    source: Literal["simulator", "alpaca"] | None = None
    mode: Literal["dry_run", "live"] | None = None
    kill_switch: bool | None = None

    def apply(self, config: BrokerConfig) -> BrokerConfig:
        changes = {k: v for k, v in self.model_dump().items() if v is not None}
        return config.model_copy(update=changes)


class AlpacaKeys(JsonBackedSettings):
    """APCA_API_KEY_ID / APCA_API_SECRET_KEY, else config/api_keys.json."""

    json_name: ClassVar[str] = "api_keys"
    json_required: ClassVar[bool] = False
    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore", populate_by_name=True)

    key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("APCA_API_KEY_ID", "alpaca_key_id")
    )
    secret_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("APCA_API_SECRET_KEY", "alpaca_secret_key")
    )

    def require(self) -> tuple[SecretStr, SecretStr]:
        if self.key_id is None or self.secret_key is None:
            raise ConfigError(
                "broker.source is 'alpaca' but no keys: set APCA_API_KEY_ID and "
                "APCA_API_SECRET_KEY (or alpaca_key_id / alpaca_secret_key in config/api_keys.json)"
            )
        return self.key_id, self.secret_key
