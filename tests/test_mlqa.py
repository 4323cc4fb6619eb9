"""MLQA: EM/F1 as the official ``mlqa_evaluation_v1.py`` defines them, the loader, ``qagate score``."""

from __future__ import annotations

import json
import random
import re
import string
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from qagate.cli import main
from qagate.core.errors import QagateError
from qagate.data import load_dataset
from qagate.data.mlqa import language_of
from qagate.scoring import mlqa
from qagate.scoring.squad import score

DATA = Path(__file__).parent / "data" / "mlqa"
DE = DATA / "dev-context-de-question-de.json"
ES = DATA / "dev-context-es-question-es.json"
ZH = DATA / "dev-context-zh-question-zh.json"

# --- a transcription of the official script's normalisation, to compare against ---------------

_PUNCT = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}.union(
    string.punctuation
)


def _official_normalize(s: str, lang: str) -> str:
    def remove_articles(text):
        if lang == "en":
            return re.sub(r"\b(a|an|the)\b", " ", text)
        if lang == "es":
            return re.sub(r"\b(un|una|unos|unas|el|la|los|las)\b", " ", text)
        if lang == "vi":
            return re.sub(r"\b(của|là|cái|chiếc|những)\b", " ", text)
        if lang == "de":
            return re.sub(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b", " ", text)
        if lang == "ar":
            return re.sub("\\sال^|ال", " ", text)
        return text

    def mixed_segmentation(text):
        segs_out, temp_str = [], ""
        for char in text:
            if re.search(r"[\u4e00-\u9fa5]", char) or char in _PUNCT:
                if temp_str != "":
                    segs_out.extend(temp_str.split())
                    temp_str = ""
                segs_out.append(char)
            else:
                temp_str += char
        if temp_str != "":
            segs_out.extend(temp_str.split())
        return segs_out

    text = remove_articles("".join(ch for ch in s.lower() if ch not in _PUNCT))
    tokens = mixed_segmentation(text) if lang == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip() != "")


def _official_f1(prediction: str, truth: str, lang: str) -> float:
    p = _official_normalize(prediction, lang).split()
    g = _official_normalize(truth, lang).split()
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


# --- hand-checked cases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "lang,text,expected",
    [
        ("en", "The Cat's hat!", "cats hat"),
        ("de", "Der Hund, die Katze und das Haus.", "hund katze und haus"),
        ("de", "Eines Tages, im Jahr 1881", "tages im jahr 1881"),
        ("es", "¡Los perros y las gatas!", "perros y gatas"),
        ("es", "Una ciudad «antigua»", "ciudad antigua"),
        ("zh", "海拔一千二百米。", "海 拔 一 千 二 百 米"),
        ("zh", "约1200m高", "约 1200m 高"),
        ("ar", "الكتاب الجديد", "كتاب جديد"),
        ("ar", "مالك، صديقي؟", "م ك صديقي"),  # sic: the official regex drops every "ال"
        ("vi", "Những cái bàn của tôi.", "bàn tôi"),
        ("vi", "Các thành phố", "các thành phố"),  # "các" is not in the official list
        ("hi", "भारत की राजधानी।", "भारत की राजधानी"),  # the danda is punctuation (Po)
    ],
)
def test_normalisation_hand_checked(lang, text, expected):
    assert mlqa.normalize_answer(text, lang) == expected
    assert _official_normalize(text, lang) == expected


@pytest.mark.parametrize(
    "lang,prediction,truth,em,f1",
    [
        ("zh", "海拔一千二百米", "一千二百米", 0.0, 10 / 12),  # 5 of 7 characters: P 5/7, R 1
        ("de", "im Jahr 1881", "1881", 0.0, 0.5),
        ("de", "die Jahr 1881", "1881 Jahr", 0.0, 1.0),
        ("es", "las cajas de madera", "cajas de madera", 1.0, 1.0),
        ("ar", "الكتاب", "كتاب", 1.0, 1.0),
        ("hi", "नई दिल्ली", "दिल्ली", 0.0, 2 / 3),
        ("vi", "của Hà Nội", "Hà Nội", 1.0, 1.0),
    ],
)
def test_em_f1_hand_checked(lang, prediction, truth, em, f1):
    assert mlqa.exact_match(prediction, [truth], lang) == em
    assert mlqa.f1(prediction, [truth], lang) == pytest.approx(f1, abs=1e-12)
    assert mlqa.f1(prediction, [truth], lang) == _official_f1(prediction, truth, lang)


def test_matches_the_official_normalisation_on_random_text():
    """Random mixes of letters, CJK, Arabic, Devanagari, punctuation and articles agree exactly."""
    rng = random.Random(0)
    pieces = [
        "a",
        "the",
        "La",
        "los",
        "der",
        "Des",
        "của",
        "những",
        "ال",
        "كتاب",
        "।",
        "书",
        "店",
        "，",
        "!",
        "$",
        "«",
        "—",
        "1881",
        "Ünïcode",
        " ",
        "  ",
        "\t",
        "x-y",
        "l'eau",
        "中文abc",
    ]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 8)))
        for lang in mlqa.LANGUAGES:
            assert mlqa.normalize_answer(text, lang) == _official_normalize(text, lang), (text, lang)


# --- loader, dispatch and the command line ---------------------------------------------------


def test_loader_takes_the_language_from_the_file_name():
    assert language_of(DE) == "de" and language_of("dev-context-zh-question-en.json") == "zh"
    assert language_of("dev-v1.1.json") is None
    assert load_dataset(ZH).language == "zh"
    assert load_dataset(ES, language="de").language == "de"
    assert load_dataset("sample").language is None
    with pytest.raises(QagateError, match="unknown MLQA language 'fr'"):
        load_dataset(ES, language="fr")


def test_score_dispatches_on_the_dataset_language():
    zh = load_dataset(ZH)
    answers = {ex.id: ex.answers[0] for ex in zh}
    first = zh.examples[0]
    answers[first.id] = "在海拔一千二百米"  # 7 of its 8 characters are a reference's 7
    scores = score(zh, answers)
    assert scores.exact_match == pytest.approx(100 * 4 / 5)
    assert scores.f1 == pytest.approx(100 * (4 + 14 / 15) / 5)
    plain = score(list(zh), answers)  # no language: SQuAD rules, one token per answer
    assert plain.f1 == pytest.approx(80.0)


def test_qagate_score_prints_what_the_official_mlqa_script_prints(tmp_path, capsys):
    es = load_dataset(ES)
    answers = {ex.id: ex.answers[0] for ex in es}
    answers[es.examples[0].id] = "las siete de la mañana"
    del answers[es.examples[1].id]
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    assert main(["score", str(ES), str(preds)]) == 0
    out, err = capsys.readouterr()
    em = 100.0 * 3 / 5
    best = max(_official_f1("las siete de la mañana", ref, "es") for ref in es.examples[0].answers)
    f1 = 100.0 * (3 + best) / 5
    assert out == json.dumps({"exact_match": em, "f1": f1}) + "\n"
    assert "1 of 5 questions have no prediction" in err
    # --lang overrides the name: English rules drop "a" but keep "las"/"la", so the first
    # answer now matches "a las siete de la mañana" exactly
    assert main(["score", str(ES), str(preds), "--lang", "en"]) == 0
    assert json.loads(capsys.readouterr()[0])["exact_match"] == pytest.approx(80.0)
    assert main(["score", str(ES), str(preds), "--lang", "xx"]) == 2
    assert "unknown MLQA language 'xx'" in capsys.readouterr()[1]


def test_gate_file_on_an_mlqa_file_scores_with_mlqa_rules(pytester):
    """f1 >= 95 holds only under MLQA's Chinese character tokens (SQuAD's rules give F1 80).

    In a subprocess: an in-process run would import (and then drop) numpy and other C extensions."""
    zh = load_dataset(ZH)
    answers = {ex.id: ex.answers[0] for ex in zh}
    answers[zh.examples[0].id] = "在海拔一千二百米"
    models = pytester.path / "models"
    models.mkdir()
    (models / "replayed.json").write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    (models / "replayed.yaml").write_text(
        "name: replayed\nrole: teacher\nkind: replay\nsource: replayed.json\n"
    )
    pytester.makefile(
        ".yaml",
        gate_mlqa=f"dataset: {ZH}\nmodels: models\nrules:\n  - apply_to: all\n"
        "    require: [f1 >= 95, exact_match >= 80]\n",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
