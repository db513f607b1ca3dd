"""`python -m dash_app`: serve the dashboard; `python -m dash_app hash-password`: make a hash."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from werkzeug.security import generate_password_hash

from dash_app.settings import DashSettings
from stock_assets.lib.settings import ConfigError

log = logging.getLogger("dash_app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dash_app", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "hash-password"))
    parser.add_argument("--host", help="override dash_settings.host")
    parser.add_argument("--port", type=int, help="override dash_settings.port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    if args.command == "hash-password":
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline()
        password = password.rstrip("\n")
        if not password:
            log.error("empty password")
            return 2
        sys.stdout.write(generate_password_hash(password) + "\n")
        return 0

    try:
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        settings = DashSettings.load(**overrides)
        settings.validate_for_startup()
        from dash_app.app import build_services, create_app

        app = create_app(settings, build_services(settings))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    log.info(
        "dashboard on http://%s:%s (mode %s, user %s)",
        settings.host,
        settings.port,
        settings.mode,
        settings.username,
    )
    app.run(host=settings.host, port=settings.port, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
