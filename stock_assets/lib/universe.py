"""The symbol universe: config/symbols.json is the one list (read at run time, not import)."""

from __future__ import annotations

import json
from pathlib import Path

from stock_assets.lib.settings import ConfigError, config_dir


def symbols_path() -> Path:
    return config_dir() / "symbols.json"


def load_symbols(path: Path | None = None) -> tuple[str, ...]:
    """The configured symbols, upper-case, in file order; a bad file raises ConfigError."""
    path = path or symbols_path()
    try:
        raw = json.loads(path.read_text())
        symbols = tuple(str(s).upper() for s in raw["symbols"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f'{path}: expected {{"symbols": ["AAPL", ...]}}: {exc}') from exc
    if not symbols or len(set(symbols)) != len(symbols):
        raise ConfigError(f"{path}: the symbol list is empty or has duplicates")
    return symbols
