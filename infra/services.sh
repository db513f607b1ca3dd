#!/usr/bin/env bash
# Local services for development and tests: ./infra/services.sh up|down|status|install [unit...]
# Units (in start order) live in infra/services/<unit>.sh; `down` stops them in reverse order.
set -euo pipefail
source "$(dirname "$0")/services/lib.sh"

ALL_UNITS=(${STOCK_SERVICES:-postgres kafka spark search chromium mlflow})

cmd=${1:-status}; shift || true
units=("$@"); [ ${#units[@]} -eq 0 ] && units=("${ALL_UNITS[@]}")
for u in "${units[@]}"; do
  [ -f "$ROOT_DIR/infra/services/$u.sh" ] || die "unknown service unit '$u' (have: ${ALL_UNITS[*]})"
  source "$ROOT_DIR/infra/services/$u.sh"
done

case "$cmd" in
  install)
    for u in "${units[@]}"; do UNIT=$u "${u}_install"; done ;;
  up)
    for u in "${units[@]}"; do
      if UNIT=$u "${u}_healthy"; then log "$u already up"; continue; fi
      UNIT=$u "${u}_install"
      UNIT=$u "${u}_start"
      log "$u up"
    done ;;
  down)
    for ((i=${#units[@]}-1; i>=0; i--)); do u=${units[i]}; UNIT=$u "${u}_stop"; log "$u down"; done ;;
  status)
    rc=0
    for u in "${units[@]}"; do
      if UNIT=$u "${u}_healthy"; then printf '%-10s up    %s\n' "$u" "$(UNIT=$u "${u}_where")"
      else printf '%-10s down\n' "$u"; rc=1; fi
    done
    exit $rc ;;
  *) die "usage: $0 up|down|status|install [unit...]" ;;
esac
