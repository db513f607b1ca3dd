"""Error causes shared by every stage: a transient outage is retried, bad input or settings are not.

`ConfigError` (stock_assets.lib.settings) means a setting is wrong: retrying cannot help. The
`TransientError`s below mean a dependency did not answer (refused, timed out, went away mid-way):
the same work succeeds once it is back, so the run retries it with backoff.
"""


class TransientError(RuntimeError):
    """A dependency is unreachable or timed out; the work itself is fine: retry it later."""


class WarehouseUnavailable(TransientError):
    """The PostgreSQL warehouse refused, timed out or dropped the connection."""


class BrokerUnavailable(TransientError):
    """The Kafka cluster did not answer within the timeout."""
