# Headless browser for the dashboard's browser tests and bench/dashboard.py: Debian's chromium and
# chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver). Test tools' own browser downloads
# (playwright install, puppeteer) fail on the development machines, so the project installs these.
# Nothing long-running: selenium starts chromedriver + a headless chromium per test session, with the
# flags in stock_assets_tests/dash_app/harness.py (see the README, "Dashboard").

CHROMIUM_BIN=/usr/bin/chromium
CHROMEDRIVER_BIN=/usr/bin/chromedriver

chromium_install() {
  apt_install chromium chromium-driver
}

chromium_start() { :; }

chromium_stop() { :; }

chromium_healthy() {
  [ -x "$CHROMIUM_BIN" ] && [ -x "$CHROMEDRIVER_BIN" ] \
    && "$CHROMIUM_BIN" --version >/dev/null 2>&1 \
    && "$CHROMEDRIVER_BIN" --version >/dev/null 2>&1
}

chromium_where() {
  printf '%s, %s' "$("$CHROMIUM_BIN" --version 2>/dev/null)" \
    "$("$CHROMEDRIVER_BIN" --version 2>/dev/null | cut -d' ' -f1-2)"
}
