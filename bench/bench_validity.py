"""How often a ``confidence: 0.95`` verdict is wrong: the valid engine against the old bootstrap.

Real per-question scores: the SQuAD v1.1 leaderboard prediction files on the full dev set
(10,570 questions). Each repetition draws a random sample of n questions (without
replacement) and judges an EM rule on it, the way the gate would on a dataset of n questions:

- teacher-relative ``exact_match >= c * teacher``, with c set so that on the full dev set the
  student's EM minus c x the teacher's is exactly the margin (in EM points);
- absolute ``exact_match >= T``, with T = the student's full-set EM minus the margin.

At a margin <= 0 the rule truly fails (0: on the boundary), so every PASS is a false pass: at
``confidence: 0.95`` the promise is at most 2.5% per verdict. At +1 and +3 the rule truly
holds and the pass rate is the power. Two engines judge the same samples:

- new: :func:`qagate.scoring.confseq.batch_bounds`, the code the judge runs (one look of the
  betting confidence sequence, bets tuned to n);
- old: the percentile bootstrap of ``qagate.scoring.stats`` (2,000 resamples, paired for the
  teacher-relative rule). EM per question is 0 or 1, so a bootstrap resample of a sample is a
  multinomial draw over the four (student, teacher) outcomes; the script draws those counts
  directly, which is the same distribution as ``stats.paired_bootstrap``'s resampling and far
  cheaper. ``--check`` repeats one small cell with ``stats.paired_bootstrap`` itself.

A smaller F1 table (margins -0.5 and 0, n up to 200) calls the bootstrap itself per sample.

Clusters (``cluster:``, issue 29 item 6): SQuAD's questions come about 220 to an article. The
cluster table draws n *articles* (without replacement, of the dev set's 48) and judges the
rules on all their questions, as a gate on a dataset of n articles would, with the truth the
question-weighted value over the whole dev set (what a sample of articles estimates): every
PASS at a margin <= 0 is false. Three engines judge the same samples, all the judge's code:
``none`` (questions as the sampling unit), ``paragraph`` and ``article`` (those clusters as the
unit, :mod:`qagate.gating.clusters`). It also prints the standard errors of each rule's
quantity on the whole dev set, clustered by article and paragraph, over the question-level
ones (the linearised ratio estimator's, as a cluster bootstrap estimates them).

    python bench/bench_validity.py [--reps 4000] [--f1-reps 1000] [--cluster-reps 1000]
        [--seed 0] [--check] [--json out.json]

numpy only; about 8 minutes on 2 shared CPU cores at the defaults (it prints its run time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from qagate.data import load_dataset, load_predictions
from qagate.gating.clusters import cluster_key, group
from qagate.scoring import stats
from qagate.scoring.confseq import batch_bounds
from qagate.scoring.squad import score

SYSTEMS = {
    "BERT": "bert-ensemble-google.json",
    "r-net": "r-net-msra.json",
    "SLQA+": "slqa-alibaba.json",
    "Match-LSTM": "match-lstm-smu.json",
}
PAIRS = [("r-net", "BERT"), ("SLQA+", "r-net"), ("Match-LSTM", "BERT")]  # (student, teacher)
SIZES = [20, 65, 200, 1000]
MARGINS = [-1.0, -0.5, 0.0, 1.0, 3.0]
LEVEL = 0.95
CHUNK = 250  # repetitions per block of bootstrap counts (memory: resamples x CHUNK x 4)


CLUSTER_SIZES = [5, 10, 20]  # articles per sample (the dev set has 48)
CLUSTER_MARGINS = [-1.0, 0.0, 3.0, 10.0]
ENGINES = ("none", "paragraph", "article")
ROWS = 250  # samples per batch_bounds call in the cluster table (memory: ROWS x questions)


def cell(pair: tuple[str, str], kind: str, rule: str, margin: float, n: int, **rates: float) -> dict:
    """One table cell's row: the pair (student, teacher), the rule and margin, n, and its rates."""
    return {"pair": f"{pair[0]}/{pair[1]}", "kind": kind, "rule": rule, "margin": margin, "n": n, **rates}


def per_question(
    shared: Path,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, list[str]]]:
    """Per-question EM (0 or 1) and F1 (0..1) of every system on the dev set, in dataset order,
    and each question's article and paragraph (:func:`qagate.gating.clusters.cluster_key`)."""
    squad = shared / "data" / "squad"
    dataset = load_dataset(squad / "dev-v1.1.json")
    ids = [example.id for example in dataset.examples]
    em, f1 = {}, {}
    for name, file in SYSTEMS.items():
        scores = score(dataset, load_predictions(squad / "predictions" / file))
        em[name] = np.array([scores.per_question_em.get(i, 0.0) for i in ids])
        f1[name] = np.array([scores.per_question_f1.get(i, 0.0) for i in ids])
    labels = {kind: [cluster_key(ex, kind) for ex in dataset.examples] for kind in ("article", "paragraph")}
    return em, f1, labels


def simulate_f1(f1: dict[str, np.ndarray], reps: int, seed: int) -> list[dict]:
    """F1 (continuous per-question values): the boundary (margin 0) and 0.5 points short, at
    n = 20, 65 and 200, with ``stats.paired_bootstrap`` / ``stats.bootstrap_ci`` called as the
    judge called them (no shortcut exists for continuous values, hence fewer samples)."""
    rng = np.random.default_rng(seed + 2)
    size = next(iter(f1.values())).size
    rows = []
    for n in SIZES[:3]:
        samples = [rng.choice(size, n, replace=False) for _ in range(reps)]
        for student, teacher in PAIRS:
            s, t = 100 * f1[student], 100 * f1[teacher]
            for margin in (-0.5, 0.0):
                c, threshold = (s.mean() - margin) / t.mean(), s.mean() - margin
                xs, xt = np.stack([s[i] for i in samples]), np.stack([t[i] for i in samples])
                new_rel, _ = batch_bounds(xs - c * xt, -100 * c, 100, LEVEL)
                new_abs, _ = batch_bounds(xs, 0, 100, LEVEL)
                old_rel = np.array(
                    [
                        stats.paired_bootstrap(a, b, coef=c, level=LEVEL, seed=k).low
                        for k, (a, b) in enumerate(zip(xs, xt))
                    ]
                )
                old_abs = np.array([stats.bootstrap_ci(a, level=LEVEL, seed=k).low for k, a in enumerate(xs)])
                for kind, rule, old, new in (
                    ("relative", f"F1 >= {c:.5f} x teacher", old_rel >= 0, new_rel >= 0),
                    ("absolute", f"F1 >= {threshold:.2f}", old_abs >= threshold, new_abs >= threshold),
                ):
                    rows.append(
                        cell(
                            (student, teacher),
                            kind,
                            rule,
                            margin,
                            n,
                            old_pass=float(old.mean()),
                            new_pass=float(new.mean()),
                        )
                    )
        print(f"  F1 n={n} done", file=sys.stderr, flush=True)
    return rows


def clustered_se(values: np.ndarray, labels: list[str]) -> float:
    """The standard error of the question-weighted mean of ``values`` with ``labels``' clusters
    as the sampling unit (the linearised ratio estimator: what a cluster bootstrap estimates)."""
    grouped = group(values, labels)
    k, sizes = grouped.sizes.size, grouped.sizes
    residual = sizes * (grouped.means - values.mean())
    return float(np.sqrt(k / (k - 1) * (residual**2).sum()) / sizes.sum())


def se_ratios(em: dict[str, np.ndarray], labels: dict[str, list[str]]) -> list[dict]:
    """Each rule quantity's clustered standard error over the question-level one, full dev set."""
    rows = []
    for student, teacher in PAIRS:
        s, t = 100 * em[student], 100 * em[teacher]
        c = s.mean() / t.mean()
        for kind, values in (("relative", s - c * t), ("absolute", s)):
            plain = float(values.std(ddof=1) / np.sqrt(values.size))
            ratios = {k: clustered_se(values, labels[k]) / plain for k in ("article", "paragraph")}
            rows.append({"pair": f"{student}/{teacher}", "kind": kind, **ratios})
    return rows


def full_set_intervals(em: dict[str, np.ndarray], labels: dict[str, list[str]]) -> list[dict]:
    """The judge's interval (:func:`qagate.gating.judge.rule_interval`) of each rule on the
    whole dev set at margin 0, with each engine: what a clustered gate on SQuAD dev can decide."""
    from qagate.gating.judge import rule_interval, rule_sequence, rule_values
    from qagate.gating.rules import parse_rule

    rows = []
    for student, teacher in PAIRS:
        s, t = 100 * em[student], 100 * em[teacher]
        c = s.mean() / t.mean()
        for kind, text, reference in (
            ("relative", f"exact_match >= {c:.5f} * teacher", t),
            ("absolute", f"exact_match >= {s.mean():.2f}", None),
        ):
            rule = parse_rule(text, confidence=LEVEL)
            for engine in ENGINES:
                iv = rule_interval(rule, s, reference, clusters=None if engine == "none" else labels[engine])
                rows.append(
                    {
                        "pair": f"{student}/{teacher}",
                        "kind": kind,
                        "engine": engine,
                        "low": iv.low,
                        "high": iv.high,
                    }
                )
            # the road not taken: each article's mean unweighted (another estimand: the mean article's)
            grouped = group(rule_values(rule, s, reference), labels["article"])
            order = np.random.default_rng(0).permutation(grouped.means.size)
            iv = rule_sequence(rule, horizon=grouped.means.size).update(grouped.means[order])
            low, high = iv.low - rule.offset, iv.high - rule.offset
            rows.append(
                {
                    "pair": f"{student}/{teacher}",
                    "kind": kind,
                    "engine": "unweighted",
                    "low": low,
                    "high": high,
                }
            )
    return rows


def cluster_bounds(
    values: np.ndarray,
    samples: list[np.ndarray],
    labels: list[str] | None,
    lo: float,
    hi: float,
    seed: int,
) -> np.ndarray:
    """The judge's lower bound on each sample's questions: questions as the unit (``labels``
    None) or clusters, each one draw weighted by its size over the sample's largest, in a
    random order of questions or clusters, as the judge takes them (``seed``: the same orders
    for every rule). Rows of unequal length are padded with weight 0 and the bets tuned to
    each row's own count."""
    rng = np.random.default_rng(seed)
    lows = []
    for start in range(0, len(samples), ROWS):
        block = samples[start : start + ROWS]
        rows_x, rows_w = [], []
        for idx in block:
            if labels is None:
                rows_x.append(values[rng.permutation(idx)])
                rows_w.append(np.ones(idx.size))
            else:
                grouped = group(values[idx], [labels[i] for i in idx])
                order = rng.permutation(grouped.means.size)
                rows_x.append(grouped.means[order])
                rows_w.append(grouped.weights[order])
        width = max(x.size for x in rows_x)
        x = np.full((len(block), width), lo)
        w = np.zeros((len(block), width))
        for r, (xr, wr) in enumerate(zip(rows_x, rows_w)):
            x[r, : xr.size], w[r, : wr.size] = xr, wr
        counts = np.array([xr.size for xr in rows_x])
        low, _ = batch_bounds(x, lo, hi, LEVEL, weights=w, horizon=counts)
        lows.append(low)
    return np.concatenate(lows)


def simulate_clusters(
    em: dict[str, np.ndarray], labels: dict[str, list[str]], reps: int, seed: int
) -> list[dict]:
    """Samples of n whole articles: each engine's pass rate per rule and margin."""
    rng = np.random.default_rng(seed + 3)
    articles: dict[str, list[int]] = {}
    for position, label in enumerate(labels["article"]):
        articles.setdefault(label, []).append(position)
    members = [np.array(m) for m in articles.values()]
    rows = []
    for n in CLUSTER_SIZES:
        samples = [
            np.concatenate([members[a] for a in rng.choice(len(members), n, replace=False)])
            for _ in range(reps)
        ]
        questions = float(np.mean([idx.size for idx in samples]))
        for student, teacher in PAIRS:
            s, t = 100 * em[student], 100 * em[teacher]
            mu_s, mu_t = s.mean(), t.mean()
            for engine in ENGINES:
                kind_labels = None if engine == "none" else labels[engine]
                absolute = cluster_bounds(s, samples, kind_labels, 0.0, 100.0, seed)
                for margin in CLUSTER_MARGINS:
                    c = (mu_s - margin) / mu_t
                    relative = cluster_bounds(s - c * t, samples, kind_labels, -100 * c, 100.0, seed)
                    threshold = mu_s - margin
                    for kind, rule, passed in (
                        ("relative", f"EM >= {c:.5f} x teacher", relative >= 0),
                        ("absolute", f"EM >= {threshold:.2f}", absolute >= threshold),
                    ):
                        rate = {"pass": float(passed.mean()), "questions": questions}
                        rows.append(cell((student, teacher), kind, rule, margin, n, engine=engine, **rate))
            print(f"  clusters n={n} articles {student}/{teacher} done", file=sys.stderr, flush=True)
    return rows


def cluster_table(rows: list[dict], margins: list[float]) -> str:
    head = "| pair | rule | margin | " + " | ".join(
        f"{n} articles none / paragraph / article" for n in CLUSTER_SIZES
    )
    lines = [head + " |", "|" + "---|" * (3 + len(CLUSTER_SIZES))]
    for pair in [f"{s}/{t}" for s, t in PAIRS]:
        for kind in ("relative", "absolute"):
            for margin in margins:
                found = {
                    (r["n"], r["engine"]): r
                    for r in rows
                    if (r["pair"], r["kind"], r["margin"]) == (pair, kind, margin)
                }
                rule = found[(CLUSTER_SIZES[0], "none")]["rule"]
                cells = " | ".join(
                    " / ".join(f"{100 * found[(n, e)]['pass']:.1f}%" for e in ENGINES) for n in CLUSTER_SIZES
                )
                lines.append(f"| {pair} | `{rule}` | {margin:+g} | {cells} |")
    return "\n".join(lines)


def bootstrap_lower(counts: np.ndarray, values: np.ndarray, n: int, resamples: int, rng) -> np.ndarray:
    """The old engine's lower bound (2.5% quantile of the resampled means) for each sample.

    ``counts``: (reps, 4) outcome counts of each sample; ``values``: (margins, 4) the value of
    each outcome under each rule. Returns (margins, reps).
    """
    reps = counts.shape[0]
    low = np.empty((values.shape[0], reps))
    for start in range(0, reps, CHUNK):
        stop = min(start + CHUNK, reps)
        drawn = rng.multinomial(n, counts[start:stop] / n, size=(resamples, stop - start))
        means = drawn @ values.T / n  # (resamples, block, margins)
        low[:, start:stop] = np.quantile(means, (1 - LEVEL) / 2, axis=0).T
    return low


def simulate(em: dict[str, np.ndarray], reps: int, resamples: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    size = next(iter(em.values())).size
    rows = []
    for n in SIZES:
        samples = np.stack([rng.choice(size, n, replace=False) for _ in range(reps)])
        for student, teacher in PAIRS:
            s, t = em[student], em[teacher]
            mu_s, mu_t = 100 * s.mean(), 100 * t.mean()
            xs, xt = s[samples], t[samples]  # (reps, n) of 0/1
            outcome = (2 * xs + xt).astype(int)  # 0: both wrong, 1: teacher only, 2: student only, 3: both
            counts = np.stack([(outcome == k).sum(axis=1) for k in range(4)], axis=1)
            coefs = [(mu_s - margin) / mu_t for margin in MARGINS]
            # each outcome's value: student - c * teacher (relative), student (absolute), in points
            relative = np.array([[0.0, -100 * c, 100.0, 100 - 100 * c] for c in coefs])
            absolute = np.array([[0.0, 0.0, 100.0, 100.0]])
            old_rel = bootstrap_lower(counts, relative, n, resamples, rng)
            old_abs = bootstrap_lower(counts, absolute, n, resamples, rng)[0]
            new_abs, _ = batch_bounds(100 * xs, 0, 100, LEVEL)
            for i, (margin, c) in enumerate(zip(MARGINS, coefs)):
                new_rel, _ = batch_bounds(100 * xs - 100 * c * xt, -100 * c, 100, LEVEL)
                threshold = mu_s - margin
                for rule, old, new in (
                    (f"EM >= {c:.5f} x teacher", old_rel[i] >= 0, new_rel >= 0),
                    (f"EM >= {threshold:.2f}", old_abs >= threshold, new_abs >= threshold),
                ):
                    rows.append(
                        cell(
                            (student, teacher),
                            "relative" if "teacher" in rule else "absolute",
                            rule,
                            margin,
                            n,
                            old_pass=float(old.mean()),
                            new_pass=float(new.mean()),
                        )
                    )
            print(f"  n={n} {student}/{teacher} done", file=sys.stderr, flush=True)
    return rows


def check_shortcut(em: dict[str, np.ndarray], reps: int, seed: int) -> tuple[float, float]:
    """r-net/BERT, n=20, 0.5 points short: the multinomial shortcut against stats.paired_bootstrap."""
    rng = np.random.default_rng(seed + 1)
    s, t = em["r-net"], em["BERT"]
    n, c = 20, (100 * s.mean() + 0.5) / (100 * t.mean())
    direct = shortcut = 0
    for i in range(reps):
        idx = rng.choice(s.size, n, replace=False)
        interval = stats.paired_bootstrap(100 * s[idx], 100 * t[idx], coef=c, level=LEVEL, seed=i)
        direct += interval.low >= 0
        counts = np.bincount((2 * s[idx] + t[idx]).astype(int), minlength=4)[None, :]
        values = np.array([[0.0, -100 * c, 100.0, 100 - 100 * c]])
        shortcut += bootstrap_lower(counts, values, n, 2000, rng)[0, 0] >= 0
    return direct / reps, shortcut / reps


def table(rows: list[dict], margins: list[float], sizes: list[int] = SIZES) -> str:
    head = "| pair | rule | margin | " + " | ".join(f"n={n} old / new" for n in sizes) + " |"
    lines = [head, "|" + "---|" * (3 + len(sizes))]
    for pair in [f"{s}/{t}" for s, t in PAIRS]:
        for kind in ("relative", "absolute"):
            for margin in margins:
                cells = {
                    r["n"]: r for r in rows if (r["pair"], r["kind"], r["margin"]) == (pair, kind, margin)
                }
                rule = cells[sizes[0]]["rule"]
                values = " | ".join(
                    f"{100 * cells[n]['old_pass']:.1f}% / {100 * cells[n]['new_pass']:.1f}%" for n in sizes
                )
                lines.append(f"| {pair} | `{rule}` | {margin:+g} | {values} |")
    return "\n".join(lines)


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("QAGATE_SHARED") or here.parent / "shared")
    )
    parser.add_argument("--reps", type=int, default=4000, help="random samples per cell (default 4000)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="also run one cell with stats.paired_bootstrap")
    parser.add_argument(
        "--f1-reps",
        type=int,
        default=1000,
        help="samples per F1 cell (stats' bootstrap itself; 0: no F1 table)",
    )
    parser.add_argument(
        "--cluster-reps",
        type=int,
        default=1000,
        help="samples of whole articles per cluster cell (default 1000; 0: no cluster table)",
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    if args.reps < 1 or args.resamples < 1 or args.f1_reps < 0 or args.cluster_reps < 0:
        parser.error("--reps and --resamples must be positive, --f1-reps and --cluster-reps at least 0")
    if not (args.shared / "data" / "squad" / "dev-v1.1.json").is_file():
        print(f"bench_validity: no SQuAD dev set under {args.shared} (pass --shared)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    em, f1, labels = per_question(args.shared)
    rows = simulate(em, args.reps, args.resamples, args.seed)
    f1_rows = simulate_f1(f1, args.f1_reps, args.seed) if args.f1_reps else []
    ratios = se_ratios(em, labels)
    widths = full_set_intervals(em, labels)
    cluster_rows = simulate_clusters(em, labels, args.cluster_reps, args.seed) if args.cluster_reps else []
    se = 100 * (0.025 * 0.975 / args.reps) ** 0.5
    print(f"False passes (true margin <= 0; nominal <= 2.5%), {args.reps} samples per cell, Monte Carlo SE")
    print(f"{se:.2f} points at 2.5%, at most {100 * (0.25 / args.reps) ** 0.5:.2f}:\n")
    print(table(rows, [m for m in MARGINS if m <= 0]))
    print("\nPower (true margin > 0: share of samples that pass):\n")
    print(table(rows, [m for m in MARGINS if m > 0]))
    if f1_rows:
        f1_se = 100 * (0.025 * 0.975 / args.f1_reps) ** 0.5
        print(
            f"\nF1 false passes ({args.f1_reps} samples per cell, Monte Carlo SE {f1_se:.2f} points"
            " at 2.5%):\n"
        )
        print(table(f1_rows, [-0.5, 0.0], SIZES[:3]))
    print("\nStandard errors on the full dev set, clustered over question-level (EM, margin 0):\n")
    print("| pair | rule | article | paragraph |\n|---|---|---|---|")
    for r in ratios:
        print(f"| {r['pair']} | {r['kind']} | {r['article']:.2f}x | {r['paragraph']:.2f}x |")
    print(
        "\nThe judge's 95% interval of (left - right) on all 10,570 questions at margin 0, engines cluster"
        " none / paragraph / article, and article means unweighted (the mean article's value):\n"
    )
    print("| pair | rule | none | paragraph | article | unweighted |\n|---|---|---|---|---|---|")
    for pair in [f"{a}/{b}" for a, b in PAIRS]:
        for kind in ("relative", "absolute"):
            found = {r["engine"]: r for r in widths if (r["pair"], r["kind"]) == (pair, kind)}
            engines = (*ENGINES, "unweighted")
            cells = " | ".join(f"[{found[e]['low']:+.1f}, {found[e]['high']:+.1f}]" for e in engines)
            print(f"| {pair} | {kind} | {cells} |")
    if cluster_rows:
        c_se = 100 * (0.025 * 0.975 / args.cluster_reps) ** 0.5
        print(
            f"\nSamples of whole articles ({args.cluster_reps} per cell, Monte Carlo SE {c_se:.2f} points at"
            " 2.5%): false passes (margin <= 0) and power (+3), engines cluster none / paragraph / article:\n"
        )
        print(cluster_table(cluster_rows, CLUSTER_MARGINS))
        sizes = sorted({(r["n"], r["questions"]) for r in cluster_rows})
        print("\nMean questions per sample: " + ", ".join(f"{n} articles {q:,.0f}" for n, q in sizes))
    if args.check:
        direct, shortcut = check_shortcut(em, 2000, args.seed)
        print(
            f"\nCheck (r-net/BERT, n=20, -0.5 points, 2000 samples): stats.paired_bootstrap passes "
            f"{100 * direct:.1f}%, the multinomial shortcut {100 * shortcut:.1f}%"
        )
    print(f"\n{time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "reps": args.reps,
                    "resamples": args.resamples,
                    "rows": rows,
                    "f1_rows": f1_rows,
                    "se_ratios": ratios,
                    "full_set_intervals": widths,
                    "cluster_reps": args.cluster_reps,
                    "cluster_rows": cluster_rows,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
