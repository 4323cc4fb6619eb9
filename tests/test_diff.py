"""``qagate diff A B DATASET`` (prediction files, model declarations, runs of the history), the
run page's slice heat map and flips table, and the Markdown summary's slices that changed most:
numbers checked against the official scoring, model text escaped everywhere."""

from __future__ import annotations

import contextlib
import json
import re

import pytest

from qagate import cli
from qagate.reports.markdown import summary
from qagate.store.history import append_run, build_run, read_history
from shared_data import DEV, SQUAD, needs_shared
from test_plugin import Project, project  # noqa: F401  (the same tmp project fixture)

with contextlib.suppress(ImportError):  # imported once: pytester's in-process runs restore sys.modules
    import sqlalchemy  # noqa: F401

EVIL = "<script>alert(1)</script>"
JSON_KEYS = {
    "a",
    "b",
    "dataset",
    "questions",
    "level",
    "f1_drop",
    "slices",
    "lost",
    "gained",
    "flips",
    "notes",
}
SLICE_KEYS = {"slice", "questions", "a", "b", "lost", "gained", "f1_drops", "net_em", "interval"}
FLIP_KEYS = {"id", "direction", "question", "gold", "a", "b", "f1_a", "f1_b", "context"}


def diff_json(capsys, *args: str) -> dict:
    capsys.readouterr()  # what an in-process pytest run printed before
    assert cli.main(["diff", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def error_line(capsys, *args: str) -> str:
    capsys.readouterr()
    assert cli.main(["diff", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qagate diff: error: "), err
    return err


@needs_shared
def test_two_leaderboard_files_per_slice_with_the_official_numbers(capsys):
    from qagate.data import load_dataset, load_predictions
    from qagate.scoring.squad import score

    a, b = SQUAD / "predictions" / "r-net-msra.json", SQUAD / "predictions" / "match-lstm-smu.json"
    found = diff_json(capsys, str(a), str(b), str(DEV), "--flips", "3")
    assert set(found) == JSON_KEYS
    assert (found["a"], found["b"], found["questions"]) == ("r-net-msra", "match-lstm-smu", 10570)
    dataset = load_dataset(str(DEV))
    official = {who: score(dataset, load_predictions(path)) for who, path in (("a", a), ("b", b))}
    whole = found["slices"][0]
    assert set(whole) == SLICE_KEYS and whole["slice"] == "all"
    for who in ("a", "b"):
        assert whole[who]["exact_match"] == pytest.approx(official[who].exact_match, abs=1e-6)
        assert whole[who]["f1"] == pytest.approx(official[who].f1, abs=1e-6)
    em_a, em_b = official["a"].per_question_em, official["b"].per_question_em
    lost = [q for q in em_a if em_a[q] == 1 and em_b[q] == 0]
    assert found["lost"] == lost and whole["lost"] == len(lost) == 1855
    assert whole["gained"] == len(found["gained"]) == 287
    assert whole["net_em"] == pytest.approx(100 * (287 - 1855) / 10570, abs=1e-6)
    assert whole["interval"][0] < whole["net_em"] < whole["interval"][1] < 0  # a real loss
    by_key: dict[str, int] = {}
    for row in found["slices"][1:]:
        assert row["interval"][0] <= row["net_em"] <= row["interval"][1]
        by_key[row["slice"].split("=")[0]] = by_key.get(row["slice"].split("=")[0], 0) + row["questions"]
    assert by_key == {"question": 10570, "answer": 10570, "context": 10570, "position": 10570}
    nets = [row["net_em"] for row in found["slices"][1:]]
    assert nets == sorted(nets)  # the largest net loss first
    flips = found["flips"]
    assert [f["direction"] for f in flips] == ["lost"] * 3 + ["gained"] * 3
    assert [f["id"] for f in flips[:3]] == lost[:3] and all(set(f) == FLIP_KEYS for f in flips)
    first = dataset.by_id()[lost[0]]
    assert flips[0]["question"] == first.question and flips[0]["a"] == load_predictions(a)[lost[0]]
    assert flips[0]["context"][1] == first.answers[0]  # the gold span, between its context

    # the terminal form: the same table, one slice by key, one slice alone
    assert cli.main(["diff", str(a), str(b), str(DEV), "--slice", "question"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^question=why\s+155\s", out, re.M) and "answer=" not in out
    assert "right -> wrong: 1855 (first 10)" in out
    dates = diff_json(capsys, str(a), str(b), str(DEV), "--slice", "answer=date")
    assert dates["questions"] == 1018 and [row["slice"] for row in dates["slices"]] == ["answer=date"]


def test_html_and_text_show_a_hostile_answer_as_text(tmp_path, capsys):
    from qagate.data import load_dataset

    dataset = load_dataset("sample")
    gold = {ex.id: ex.answers[0] for ex in dataset.examples}
    first = dataset.examples[0].id
    (tmp_path / "a.json").write_text(json.dumps(gold))
    (tmp_path / "b.json").write_text(json.dumps(gold | {first: EVIL + "\x1b[2J"}))
    page = tmp_path / "diff.html"
    found = diff_json(
        capsys, str(tmp_path / "a.json"), str(tmp_path / "b.json"), "sample", "--html", str(page)
    )
    assert found["lost"] == [first] and found["flips"][0]["b"] == EVIL + "\x1b[2J"
    html = page.read_text()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="heat"' in html and 'class="flips"' in html and "<mark>" in html
    assert cli.main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "sample"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "'<script>alert(1)</script>\\x1b[2J'" in out


def test_bad_input_is_one_line_each(tmp_path, capsys):
    from qagate.data import load_dataset

    dataset = load_dataset("sample")
    (tmp_path / "a.json").write_text(json.dumps({ex.id: "x" for ex in dataset.examples}))
    a = str(tmp_path / "a.json")
    assert "did you mean 'how_many'" in error_line(capsys, a, a, "sample", "--slice", "question=howmany")
    assert "did you mean 'question'" in error_line(capsys, a, a, "sample", "--slice", "questoin")
    assert "no such predictions file" in error_line(capsys, a, str(tmp_path / "nope.json"), "sample")
    assert "no such model declaration" in error_line(capsys, str(tmp_path / "m.yaml"), a, "sample")
    (tmp_path / "other.json").write_text(json.dumps({"zz": "x"}))
    assert "no question of dataset" in error_line(capsys, a, str(tmp_path / "other.json"), "sample")
    (tmp_path / "labels.json").write_text("{")
    assert "labels.json" in error_line(capsys, a, a, "sample", "--labels", str(tmp_path / "labels.json"))
    history = tmp_path / "history.jsonl"
    append_run(history, build_run(results=[], metrics=[], started=0.0, exit_status=0, rootdir=tmp_path))
    err = error_line(capsys, "zzzz", a, "sample", "--history", str(history))
    assert "'zzzz' is not a file, and no run has the id 'zzzz'" in err


def test_a_run_without_per_question_results_says_which_and_how(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    run = build_run(results=[], metrics=[], started=0.0, exit_status=0, rootdir=tmp_path)
    append_run(history, run)
    err = error_line(capsys, run["id"][:6], run["id"], "sample", "--history", str(history))
    assert f"run {run['id']} stored no per-question results" in err


def slice_gate(project: Project) -> None:
    project.gate("rules:\n  - apply_to: students\n    require: ['f1 >= 0.9 * teacher']\n")


def test_model_declarations_through_the_engine_and_the_cache(project, capsys):  # noqa: F811
    root = project.root
    args = [str(root / "models" / "teacher.yaml"), str(root / "models" / "bad.yaml"), str(root / "data.json")]
    found = diff_json(capsys, *args, "--cache-dir", str(root / "cache"))
    assert (found["a"], found["b"]) == ("teacher", "bad")
    assert (found["slices"][0]["lost"], found["slices"][0]["gained"]) == (120, 0)
    assert any((root / "cache").iterdir())  # the answers went through the prediction cache


def test_the_run_page_has_the_heat_map_and_the_flips(project, tmp_path):  # noqa: F811
    slice_gate(project)
    project.run()
    (project.root / "models" / "bad.json").write_text(
        json.dumps({f"q{i:04d}": ("nothing" if i < 40 else f"w{i}q") for i in range(400)})
    )
    project.run()
    store = project.root / ".qagate" / "history.db"
    runs = read_history(store).runs
    entries = {e["model"]: e for e in runs[-1]["slices"]}
    assert entries["teacher"]["reference"] is None and entries["bad"]["reference"] == "teacher"
    assert entries["bad"]["slices"]["all"]["lost"] == 40 and len(entries["bad"]["flips"]) == 5
    site = tmp_path / "site"
    assert cli.main(["dashboard", "--history", str(store), "--out", str(site)]) == 0
    page = (site / "runs" / f"{runs[-1]['id']}.html").read_text()
    section = page[page.index('<section id="slices">') : page.index('<section id="worst">')]
    assert '<th class="run">bad / teacher</th>' in section and '<th class="run">bad / run 1</th>' in section
    assert 'title="all: bad F1 90.0, teacher 100.0 (400 questions)">90</td>' in section
    assert 'title="all: bad F1 90.0, run 1 70.0 (400 questions)">129</td>' in section
    assert "<code>q0000</code>" in section and "<mark>w0q</mark>" in section
    first = (site / "runs" / f"{runs[0]['id']}.html").read_text()
    assert '<th class="run">bad / run' not in first  # nothing earlier to compare with


def test_diff_of_two_runs_uses_their_stored_results(project, capsys):  # noqa: F811
    slice_gate(project)
    project.run()
    before = json.loads((project.root / "models" / "bad.json").read_text())
    after = {f"q{i:04d}": ("nothing" if i < 40 else f"w{i}q") for i in range(400)}
    (project.root / "models" / "bad.json").write_text(json.dumps(after))
    project.run()
    store = str(project.root / ".qagate" / "history.db")
    old, new = (run["id"] for run in read_history(store).runs)
    data = str(project.root / "data.json")
    found = diff_json(capsys, f"{old[:6]}:bad", f"{new}:bad", data, "--history", store)
    assert (found["a"], found["b"]) == (f"bad@{old[:8]}", f"bad@{new[:8]}")
    right = {qid for qid, answer in before.items() if answer != "nothing"}
    now = {qid for qid, answer in after.items() if answer != "nothing"}
    assert found["lost"] == sorted(right - now) and found["gained"] == sorted(now - right)
    assert found["slices"][0]["b"]["f1"] == 90.0 and found["flips"][0]["b"] is None  # scores, no answers
    against = diff_json(capsys, f"{new}:teacher", "last:bad", data, "--history", store)
    assert against["slices"][0]["lost"] == 40
    assert cli.main(["diff", f"{old}:bad", "last:bad", data, "--history", store]) == 0
    assert "(not stored)" in capsys.readouterr().out
    err = error_line(capsys, old, new, data, "--history", store)
    assert f"run {old} stored the results of 2 models (bad, good)" in err and f"{old[:8]}:bad" in err
    assert "no per-question results of 'nobody'" in error_line(
        capsys, f"{old}:nobody", new, data, "--history", store
    )
    assert "none of the questions" in error_line(
        capsys, old + ":bad", new + ":bad", "sample", "--history", store
    )


def test_markdown_lists_the_slices_that_changed_most_escaped(tmp_path):
    def entry(model, f1, ref, n=100):
        slices = {"all": {"n": 3 * n, "f1": f1, "ref_f1": ref}}
        slices |= {
            f"question={w}": {"n": n, "f1": f1 - d, "ref_f1": ref} for w, d in (("what", 0), ("how", 9))
        }
        slices["question=why"] = {"n": 5, "f1": 0.0, "ref_f1": ref}  # too small to lead the list
        return {"model": model, "dataset": "data|x", "reference": "teacher", "slices": slices}

    run = build_run(results=[], metrics=[], started=0.0, exit_status=0, rootdir=tmp_path)
    run["slices"] = [entry(EVIL, 80.0, 90.0), {"model": "teacher", "dataset": "data|x", "slices": {}}]
    text = summary([run], 0)
    section = text[text.index("### Slices that changed most") :]
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; / teacher" in section
    rows = [line for line in section.splitlines() if line.startswith("| &lt;")]
    assert rows[0].split("|")[2].strip() == "`question=how`" and "-19.0" in rows[0]
    assert "question=why" not in section and "data\\|x" in section


def test_user_labels_make_slices_of_their_own(tmp_path, capsys):
    from qagate.data import load_dataset

    ids = [ex.id for ex in load_dataset("sample").examples]
    (tmp_path / "a.json").write_text(json.dumps({qid: "x" for qid in ids}))
    (tmp_path / "labels.json").write_text(json.dumps({qid: {"domain": "legal"} for qid in ids[:3]}))
    a, labels = str(tmp_path / "a.json"), str(tmp_path / "labels.json")
    found = diff_json(capsys, a, a, "sample", "--labels", labels, "--slice", "domain")
    assert [(row["slice"], row["questions"]) for row in found["slices"]] == [
        ("all", len(ids)),
        ("domain=legal", 3),
    ]
    legal = diff_json(capsys, a, a, "sample", "--labels", labels, "--slice", "domain=legal")
    assert legal["questions"] == 3 and legal["lost"] == legal["gained"] == []
    err = error_line(capsys, a, a, "sample", "--labels", labels, "--slice", "domain=legel")
    assert "did you mean 'legal'" in err and "domain slices: legal" in err
