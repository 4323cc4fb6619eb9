"""Wall time of a gate file with its sequential rules against the same gate judged fixed-n.

Runs ``pytest GATE`` twice in subprocesses, each with a fresh (cold) prediction cache and no run
history: once the gate file as shipped, once a copy in which every sequential rule is the same
confidence rule judged on all questions (``sequential:`` removed, the rule's confidence level
kept). Prints both wall times, their ratio, the questions each sequential rule used (from the
JUnit properties ``qagate.questions_used`` / ``qagate.questions_available``) and whether every
item's verdict is the same in both runs. Beside the wall time: the pytest process's CPU time and
the machine's load before and after, because other jobs on a shared machine move wall times.

    python bench/bench_sequential_wall.py                       # quality_tests/gate_heldout.yaml
    python bench/bench_sequential_wall.py --only-sequential     # only the sequential rules' items
    python bench/bench_sequential_wall.py --gate quality_tests/gate_leaderboard.yaml --json out.json

``--only-sequential`` runs just the items of the sequential rules (and their fixed-n twins):
the whole gate also has point comparisons and baseline rules, which need every answer of both
models anyway. Imports torch in the pytest subprocesses (the zoo's models): run it alone, e.g.
``flock /tmp/qagate-torch.lock python bench/bench_sequential_wall.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GATE = ROOT / "quality_tests" / "gate_heldout.yaml"
#: the checkout's configuration and rootdir for both runs (the fixed-n copy lies outside it)
PYTEST_ROOT = ("-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT))


def fixed_n_copy(gate: Path, folder: Path) -> tuple[Path, list[str]]:
    """A copy of ``gate`` in ``folder`` with every ``sequential:`` key removed and each rule that
    was sequential given its confidence level explicitly (a sequential rule without one is
    judged at the default 0.95), so the copy holds the same confidence rules, judged fixed-n.
    Returns the copy and the ids of the rules that were sequential."""
    import yaml

    from qagate.gating.gatefile import load_gate_file

    loaded = load_gate_file(gate)
    levels = [
        [(spec is not None, rule.confidence) for rule, spec in zip(block.rules, block.sequential or ())]
        for block in loaded.blocks
    ]
    sequential_ids = sorted(
        {rule.id for block in loaded.blocks for rule, spec in zip(block.rules, block.sequential) if spec}
    )
    data = yaml.safe_load(gate.read_text(encoding="utf-8"))
    data.pop("sequential", None)
    for block, flags in zip(data["rules"], levels):
        block.pop("sequential", None)
        require = block["require"] if isinstance(block["require"], list) else [block["require"]]
        for index, entry in enumerate(require):
            was_sequential, level = flags[index] if index < len(flags) else (False, None)
            if isinstance(entry, dict):
                entry.pop("sequential", None)
            if was_sequential:
                entry = entry if isinstance(entry, dict) else {"rule": entry}
                entry["confidence"] = level
                require[index] = entry
        block["require"] = require
    copy = folder / gate.name
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return copy, sequential_ids


def node_ids(gate: Path, rule_ids: list[str], env: dict[str, str]) -> list[str]:
    """The collected items of ``gate`` whose rule is one of ``rule_ids``."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *PYTEST_ROOT,
            str(gate),
            "-m",
            "full or not full",
            "--collect-only",
            "-q",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = [line.strip() for line in done.stdout.splitlines() if "::" in line]
    chosen = [node for node in found if any(node.endswith("::" + rule_id) for rule_id in rule_ids)]
    return [str(gate) + node[node.index("::") :] for node in chosen]  # a copy outside the rootdir too


def run_gate(targets: list[str], scratch: Path, env: dict[str, str]) -> dict[str, Any]:
    """``pytest TARGETS`` with a cold cache of its own; wall time and each item's verdict."""
    cache = scratch / "cache"
    junit = scratch / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *PYTEST_ROOT,
        *targets,
        "-m",
        "full or not full",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--qagate-cache={cache}",
        "--qagate-history=none",
        f"--junitxml={junit}",
    ]
    load = os.getloadavg()[0]
    cpu = _children_cpu()
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    cpu = _children_cpu() - cpu
    items: dict[str, dict[str, Any]] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            key = props.get("qagate.model", "") + "::" + props.get("qagate.rule", case.get("name", ""))
            items[key] = {
                "status": props.get("qagate.status") or _outcome(case),
                "used": _int(props.get("qagate.questions_used")),
                "available": _int(props.get("qagate.questions_available")),
            }
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,  # user + system of the pytest process: less moved by other jobs
        "load": (load, os.getloadavg()[0]),  # the machine's 1-minute load before and after
        "returncode": done.returncode,
        "items": items,
        "tail": done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else [],
    }


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def _int(text: str | None) -> int | None:
    return int(text) if text not in (None, "") else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gate", type=Path, default=DEFAULT_GATE)
    parser.add_argument(
        "--only-sequential",
        action="store_true",
        help="run only the items of the sequential rules (in both runs)",
    )
    parser.add_argument("--fixed-first", action="store_true", help="run the fixed-n copy first")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    gate = args.gate.resolve()
    env = dict(os.environ)
    env.setdefault("QAGATE_SHARED", str(ROOT.parent / "shared"))
    with tempfile.TemporaryDirectory(prefix="qagate-wall-") as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "fixed").mkdir()
        fixed, sequential_ids = fixed_n_copy(gate, scratch / "fixed")
        if not sequential_ids:
            print(f"{gate}: no sequential rule; nothing to compare", file=sys.stderr)
            return 2
        shipped_targets, fixed_targets = [str(gate)], [str(fixed)]
        if args.only_sequential:
            shipped_targets = node_ids(gate, sequential_ids, env)
            fixed_targets = node_ids(fixed, sequential_ids, env)
        runs = {}
        pairs = [("sequential", shipped_targets), ("fixed-n", fixed_targets)]
        for name, targets in reversed(pairs) if args.fixed_first else pairs:
            (scratch / name).mkdir(exist_ok=True)
            runs[name] = run_gate(targets, scratch / name, env)
            print(
                f"# {name}: {runs[name]['seconds']:.1f} s ({' '.join(runs[name]['tail'])})",
                flush=True,
            )
    seq, fix = runs["sequential"], runs["fixed-n"]
    shown = gate.relative_to(ROOT) if gate.is_relative_to(ROOT) else gate
    print(
        f"# pytest {shown}{' (sequential rules only)' if args.only_sequential else ''}, cold cache each; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    print("| run | wall time (s) | CPU time (s) | load before / after |")
    print("|---|---|---|---|")
    for name, shown_name in (("sequential", "sequential (as shipped)"), ("fixed-n", "fixed-n")):
        run = runs[name]
        print(
            f"| {shown_name} | {run['seconds']:.1f} | {run['cpu_seconds']:.1f} | "
            f"{run['load'][0]:.1f} / {run['load'][1]:.1f} |"
        )
    ratio = fix["seconds"] / seq["seconds"] if seq["seconds"] else float("nan")
    cpu_ratio = fix["cpu_seconds"] / seq["cpu_seconds"] if seq["cpu_seconds"] else float("nan")
    print(f"fixed-n / sequential: {ratio:.2f}x wall time, {cpu_ratio:.2f}x CPU time")
    print("| item | sequential: verdict, questions used | fixed-n: verdict |")
    print("|---|---|---|")
    for key, item in sorted(seq["items"].items()):
        if not any(key.endswith("::" + rule_id) for rule_id in sequential_ids):
            continue
        other = fix["items"].get(key, {})
        used = f"{item['used']:,} of {item['available']:,}" if item["used"] is not None else "-"
        print(f"| {key} | {item['status']}, {used} | {other.get('status', '-')} |")
    same = seq["items"].keys() == fix["items"].keys() and all(
        seq["items"][key]["status"] == fix["items"][key]["status"] for key in seq["items"]
    )
    differing = sorted(
        key for key in seq["items"] if seq["items"][key]["status"] != fix["items"].get(key, {}).get("status")
    )
    print(
        f"verdicts match: {'yes' if same else 'no'} ({len(seq['items'])} items"
        + (f"; differ: {', '.join(differing)}" if differing else "")
        + ")"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"gate": str(shown), "ratio": ratio, "cpu_ratio": cpu_ratio, "same": same, "runs": runs},
                indent=1,
            )
            + "\n"
        )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
