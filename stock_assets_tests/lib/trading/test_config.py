"""Trading config: per-symbol strategies and overrides, validation errors, secret webhook URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stock_assets.lib.settings import ConfigError
from stock_assets.lib.trading.config import TradingSettings
from stock_assets.lib.trading.strategies import MacdCrossParams, SmaCrossoverParams


def write(folder: Path, content: dict) -> None:
    (folder / "trading.json").write_text(json.dumps(content))


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOCK_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("STOCK_TRADING_WEBHOOK_URL", raising=False)
    return tmp_path


def test_the_shipped_config_loads() -> None:
    settings = TradingSettings.load()
    book = settings.book()
    assert {e.strategy for e in book} == {
        "sma_crossover", "rsi_mean_reversion", "macd_cross", "bollinger_breakout",
    }  # fmt: skip
    assert len({(e.symbol, e.strategy) for e in book}) == len(book)


def test_per_symbol_strategies_and_overrides(config_dir: Path) -> None:
    write(
        config_dir,
        {
            "commission": 0.001,
            "stop_loss": 0.1,
            "default_strategies": {"macd_cross": {}},
            "symbols": {
                "msft": {
                    "strategies": {"sma_crossover": {"fast": 10, "slow": 30}},
                    "long_only": False,
                },
                "IBM": {"sizing": "fixed_fraction", "fraction": 0.5, "commission": 0.0},
            },
        },
    )
    book = {(e.symbol, e.strategy): e for e in TradingSettings.load().book()}
    assert set(book) == {("IBM", "macd_cross"), ("MSFT", "sma_crossover")}
    msft, ibm = book[("MSFT", "sma_crossover")], book[("IBM", "macd_cross")]
    assert msft.params == SmaCrossoverParams(10, 30) and not msft.uses_default_params
    assert (msft.config.long_only, msft.config.commission, msft.config.stop_loss) == (
        False,
        0.001,
        0.1,
    )
    assert ibm.params == MacdCrossParams() and ibm.uses_default_params
    assert (ibm.config.position_fraction, ibm.config.commission) == (0.5, 0.0)
    assert ibm.params_hash() != msft.params_hash() and len(ibm.params_hash()) == 16


def test_without_symbols_the_universe_runs_the_defaults(config_dir: Path) -> None:
    write(config_dir, {"default_strategies": {"rsi_mean_reversion": {"oversold": 25}}})
    book = TradingSettings.load().book(("AAPL", "IBM"))
    assert [(e.symbol, e.strategy, e.params.oversold) for e in book] == [  # type: ignore[union-attr]
        ("AAPL", "rsi_mean_reversion", 25),
        ("IBM", "rsi_mean_reversion", 25),
    ]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"symbols": {"AAPL": {"strategies": {"sma_crossover": {"fsat": 5}}}}}, "fsat"),
        ({"symbols": {"AAPL": {"strategies": {"sma_crossover": {"fast": 60}}}}}, "fast < slow"),
        ({"symbols": {"AAPL": {"strategies": {"moon_phase": {}}}}}, "moon_phase"),
        ({"symbols": {"AAPL": {"stop_loss": 2}}}, "stop_loss"),
        ({"alert_rules": [{"name": "x", "kind": "level_cross", "level": 5}]}, "needs level and"),
        ({"alert_rules": [{"name": "x", "kind": "percent_move"}]}, "threshold_pct"),
    ],
)
def test_invalid_config_names_the_problem(config_dir: Path, content: dict, named: str) -> None:
    write(config_dir, content)
    with pytest.raises(ConfigError, match=named):
        TradingSettings.load()


def test_webhook_url_is_a_secret_from_the_environment(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(config_dir, {})
    monkeypatch.setenv("STOCK_TRADING_WEBHOOK_URL", "https://hooks.example/T0/s3cr3t")
    settings = TradingSettings.load()
    assert settings.webhook_url is not None
    assert settings.webhook_url.get_secret_value().endswith("s3cr3t")
    assert "s3cr3t" not in repr(settings) + str(settings)
