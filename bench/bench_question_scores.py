"""What a baseline's per-question scores cost, and that verdicts read from them are the live ones.

Scores the five SQuAD v1.1 leaderboard prediction files on the full dev set (10,570 questions),
encodes each system's per-question scores as a baseline file keeps them (:mod:`qagate.store.questions`,
without ids) and measures the bytes per 10,000 questions (and the ids' bytes, which the history keeps
once per database). Then every system is judged against the BERT ensemble, as the teacher and as a
baseline, by ``confidence: 0.95`` rules, once with the live scores as the reference and once with
the scores decoded from the stored form: the verdicts and intervals must be identical.

    python bench/bench_question_scores.py [--out bench/question_scores.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "squad"
SYSTEMS = (
    "bert-ensemble-google",
    "r-net-msra",
    "slqa-alibaba",
    "match-lstm-smu",
    "logistic-regression-stanford",
)
RULES = (
    "exact_match >= 0.95 * teacher",
    "f1 >= 0.95 * teacher",
    "f1 >= baseline - 0.5",
    "exact_match >= baseline - 5",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "question_scores.json")
    args = parser.parse_args()

    from qagate.data import load_dataset, load_predictions
    from qagate.gating.evidence import per_question
    from qagate.gating.judge import Evidence, judge
    from qagate.gating.rules import parse_rule
    from qagate.scoring.squad import score
    from qagate.store.questions import QuestionScores, encode_ids

    dataset = load_dataset(str(SHARED / "dev-v1.1.json"))
    ids = [example.id for example in dataset.examples]
    scale = 10_000 / len(ids)
    files = {name: SHARED / "predictions" / f"{name}.json" for name in SYSTEMS}
    live = {name: score(dataset, load_predictions(path)) for name, path in files.items()}
    sizes, decoded = {}, {}
    started = time.perf_counter()
    for name, scores in live.items():
        encoded = QuestionScores.from_scores(scores, ids).encode(with_ids=False)
        text = json.dumps(encoded, sort_keys=True)
        sizes[name] = round(len(text) * scale / 1000, 2)
        decoded[name] = QuestionScores.decode(json.loads(text), ids)
        exact = decoded[name].per_question_f1 == scores.per_question_f1
        exact = exact and decoded[name].per_question_em == scores.per_question_em
        if not exact:
            raise SystemExit(f"{name}: the stored scores are not the live ones")
    seconds = time.perf_counter() - started
    verdicts = []
    reference = "bert-ensemble-google"
    for name in SYSTEMS[1:]:
        for text in RULES:
            rule = parse_rule(text, confidence=0.95)
            mine = per_question(live[name], rule.metric, ids)
            judged = []
            for theirs in (live[reference], decoded[reference]):
                values = per_question(theirs, rule.metric, ids)
                value, ref = sum(mine) / len(mine), sum(values) / len(values)
                judged.append(judge(rule, name, Evidence(value, ref, mine, values)))
            same = judged[0].status == judged[1].status and judged[0].interval == judged[1].interval
            if not same:
                raise SystemExit(f"{name} {text}: live {judged[0]} != stored {judged[1]}")
            verdicts.append({"model": name, "rule": rule.id, "status": judged[0].status})
    report = {
        "machine": f"{platform.node() or '?'} ({platform.machine()}, Python {platform.python_version()})",
        "dataset": f"SQuAD v1.1 dev, {len(ids):,} questions",
        "baseline_questions_kb_per_10k": sizes,
        "ids_kb_per_10k": round(len(encode_ids(ids)) * scale / 1000, 2),
        "encode_decode_seconds_all_systems": round(seconds, 3),
        "verdicts_equal_live_and_stored": len(verdicts),
        "verdicts": verdicts,
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "verdicts"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
