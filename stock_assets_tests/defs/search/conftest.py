"""Real history in a private warehouse and a private prefix on the real engine (see lib/search)."""

from stock_assets_tests.lib.search.conftest import client, history_db, prefix, search_settings

__all__ = ["client", "history_db", "prefix", "search_settings"]
