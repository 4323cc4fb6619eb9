"""Does a speed gate give the same verdict run after run? Runs the demo gate's speed rules N times.

Each run is a fresh pytest process on `quality_tests/gate_release.yaml -k speedup` (paired,
interleaved rounds; the prediction cache is irrelevant to timing). Prints every run's verdict,
speed-up and interval, then how many runs agreed with the majority. Run it alone on the machine
you want to know about (other jobs make it a load test, which is also informative).

    python bench/speed_stability.py [--runs 20] [--budget 60] [--gate quality_tests/gate_release.yaml]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(gate: str, budget: float, out: Path) -> dict[str, dict[str, str]]:
    """Verdicts of the speed rules in one pytest process: rule id -> JUnit properties."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        gate,
        "-k",
        "speedup",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={out}",
        "--qagate-history",
        "none",
        "--qagate-speed-budget",
        str(budget),
    ]
    subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    found = {}
    for case in ET.parse(out).iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        if props.get("qagate.rule", "").startswith("speedup"):
            found[f"{props['qagate.model']}::{props['qagate.rule']}"] = props
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--gate", default="quality_tests/gate_release.yaml")
    args = parser.parse_args()
    verdicts: dict[str, list[str]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            for rule, props in one_run(args.gate, args.budget, Path(tmp) / f"{run}.xml").items():
                verdicts[rule].append(props["qagate.status"])
                interval = ""
                if "qagate.interval_low" in props:
                    interval = (
                        f" interval of (speedup - threshold) [{float(props['qagate.interval_low']):+.3f}, "
                        f"{float(props['qagate.interval_high']):+.3f}]"
                    )
                print(
                    f"run {run:2d}  {rule:40s} {props['qagate.status']:9s} "
                    f"speedup {float(props['qagate.obtained']):.3f}{interval}",
                    flush=True,
                )
    for rule, seen in verdicts.items():
        common, count = collections.Counter(seen).most_common(1)[0]
        print(f"{rule}: {count} of {len(seen)} runs gave {common!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
