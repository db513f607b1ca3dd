"""`make chaos`: run the chaos scenarios, one line each, and write bench/results/chaos.json.

Usage: python -m stock_assets_tests.chaos [SCENARIO ...]   (default: all)
Exit code 1 when any scenario lost or duplicated a record or did not recover.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from stock_assets.lib.settings import REPO_ROOT
from stock_assets_tests.chaos.scenarios import SCENARIOS, ScenarioResult
from stock_assets_tests.chaos.services import chaos_services

RESULTS = REPO_ROOT / "bench" / "results" / "chaos.json"


def run(names: list[str], out: Path = RESULTS) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    for profile in ("single", "replicated"):
        mine = [n for n in names if SCENARIOS[n][0] == profile]
        if not mine:
            continue
        with chaos_services(profile) as services:
            for name in mine:
                try:
                    result = SCENARIOS[name][1](services)
                except Exception as exc:  # a scenario that crashed is a failed scenario
                    result = ScenarioResult(name, notes=[f"{type(exc).__name__}: {exc}"])
                results.append(result)
                sys.stdout.write(result.line() + "\n")
                sys.stdout.flush()
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {"lost": 0, "duplicated": 0},
        "lost": sum(r.lost for r in results),
        "duplicated": sum(r.duplicated for r in results),
        "scenarios": {r.scenario: r.as_dict() for r in results},
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")
    sys.stdout.write(f"wrote {out}\n")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stock_assets_tests.chaos")
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], default=[])
    args = parser.parse_args(argv)
    results = run(args.scenarios or list(SCENARIOS))
    ok = all(r.lost == 0 and r.duplicated == 0 and r.recovered for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
