"""Dashboard configuration: config/dash_settings.json, overridden by STOCK_DASH_* env (and .env).

The committed file holds the *dev* login (user `dev`, password DEV_PASSWORD, stored only as a
hash) and a dev secret key. `mode: production` refuses to start with either of them: set
STOCK_DASH_PASSWORD_HASH (from `python -m dash_app hash-password`) and STOCK_DASH_SECRET_KEY.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from werkzeug.security import check_password_hash

from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.settings import ENV_FILE, ConfigError, JsonBackedSettings

DEV_USERNAME = "dev"
DEV_PASSWORD = "dev-dashboard-only"  # printed by `make dev`; rejected in production mode
DEV_SECRET_KEY = "dev-only-insecure-secret-key"
MIN_SECRET_KEY_LEN = 32


class DashSettings(JsonBackedSettings):
    """The Dash dashboard: where it listens, who may log in, how it reaches the services."""

    json_name: ClassVar[str] = "dash_settings"
    model_config = SettingsConfigDict(env_prefix="STOCK_DASH_", env_file=ENV_FILE, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8050, ge=1, le=65535)
    mode: Literal["dev", "production"] = "dev"
    username: str = Field(min_length=1)
    password_hash: SecretStr  # werkzeug generate_password_hash (scrypt/pbkdf2), never plaintext
    secret_key: SecretStr | None = None  # Flask session signing key
    session_cookie_secure: bool = False  # true behind TLS
    session_lifetime_h: float = Field(12.0, gt=0)  # server-side session expiry
    trusted_proxies: int = Field(0, ge=0)  # reverse proxies whose X-Forwarded-For is trusted
    workers: int = Field(2, ge=1)  # gunicorn worker processes
    threads: int = Field(4, ge=1)  # threads per worker (callbacks wait on I/O)
    live_refresh_s: float = Field(5.0, ge=0.5)
    max_candles: int = Field(5000, ge=100, le=20000)  # the server buckets bars to at most this
    display_tz: str = TIMEZONE
    dagster_graphql_url: str = "http://127.0.0.1:3000/graphql"
    dagster_timeout_s: float = Field(3.0, gt=0)
    kafka_timeout_s: float = Field(3.0, gt=0)

    def uses_dev_credentials(self) -> bool:
        return check_password_hash(self.password_hash.get_secret_value(), DEV_PASSWORD)

    def validate_for_startup(self) -> None:
        """Raise ConfigError when the settings are unsafe for `mode`."""
        hash_value = self.password_hash.get_secret_value()
        if ":" not in hash_value or "$" not in hash_value:
            raise ConfigError(
                "dash_settings.password_hash (env STOCK_DASH_PASSWORD_HASH) is not a werkzeug "
                "password hash; create one with `python -m dash_app hash-password`"
            )
        if self.mode != "production":
            return
        if self.uses_dev_credentials():
            raise ConfigError(
                "dash_settings.mode is production but the login is the dev default; set "
                "STOCK_DASH_PASSWORD_HASH (from `python -m dash_app hash-password`)"
            )
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if not key or key == DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LEN:
            raise ConfigError(
                "dash_settings.mode is production but secret_key is missing, the dev default or "
                f"shorter than {MIN_SECRET_KEY_LEN} characters; set STOCK_DASH_SECRET_KEY "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
