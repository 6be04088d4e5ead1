"""NLG metrics pinned on hand-checkable cases (the METEOR JVM starts once per session and is reused)."""

from __future__ import annotations

import json
import math
import sys

import pytest

from adamix_runner.errors import UserError
from adamix_runner.evaluation import nlg_metrics
from adamix_runner.evaluation.nlg_metrics import nist, prepare, score, score_split, write_predictions


def test_bleu_identical_and_a_hand_computed_case():
    assert score(["a quiet pub in the centre"], [["a quiet pub in the centre"]], ["bleu"])["bleu"] == pytest.approx(
        100
    )
    # p1..p4 = 5/6, 3/5, 2/4, 1/3 and equal lengths: BLEU = (1/12)^(1/4)
    got = score(["the cat sat on the mat"], [["the cat sat on a mat"]], ["bleu"])["bleu"]
    assert got == pytest.approx(100 * (1 / 12) ** 0.25)  # 53.728
    # no 3-gram match and no smoothing (multi-bleu / mteval): 0
    assert score(["a b c d"], [["a b d"]], ["bleu"])["bleu"] == 0
    # the E2E protocol lowercases (pymteval is case-insensitive); multi-reference: the better one counts
    assert score(["The Eagle Is Here"], [["no", "the eagle is here"]], ["bleu"])["bleu"] == pytest.approx(100)


def test_nist_is_mteval_with_its_brevity_penalty():
    assert nist(["a b c"], [["a b c"]]) == pytest.approx(math.log2(3))  # 3 unigrams of info log2(3/1)
    assert nist(["a b c d e", "f g h i j"], [["a b c d e"], ["f g h i j"]]) == pytest.approx(math.log2(10))
    # output 2/3 of the reference length: penalty 0.5 (mteval-v13a's calibration)
    assert nist(["a b"], [["a b c"]]) == pytest.approx(0.5 * math.log2(3))


def test_ter_is_the_best_reference_per_input_averaged():
    assert score(["a b c d"], [["a b d"]], ["ter"], "webnlg")["ter"] == pytest.approx(1 / 3)  # 1 edit / 3
    assert score(["a b c d", "x"], [["q r s", "a b d"], ["x"]], ["ter"], "webnlg")["ter"] == pytest.approx(1 / 6)


def test_rouge_l_meteor_and_cider():
    # LCS 3, P = 3/4, R = 1, F(β=1.2) = 2.44·0.75 / (1 + 1.44·0.75)
    got = score(["a b c d"], [["a b d"]], ["rouge_l"], "webnlg")["rouge_l"]
    assert got == pytest.approx(100 * 2.44 * 0.75 / (1 + 1.44 * 0.75))
    # identical texts of disjoint vocabularies: every n-gram's cosine is 1, CIDEr-D = 10 (its ×10 scale)
    hyps = ["alpha beta gamma delta epsilon", "one two three four five"]
    got = score(hyps, [[hyps[0]], [hyps[1]]], ["cider", "meteor"], "webnlg")
    assert got == pytest.approx({"cider": 10.0, "meteor": 100.0})
    # METEOR 1.5 (-l en -norm) on one substitution, pinned from the reference jar
    got = score(["the cat sat on the mat"], [["the cat sat on a mat"]], ["meteor"], "webnlg")["meteor"]
    assert got == pytest.approx(45.8762, abs=1e-3)


def test_e2e_protocol_tokenizes_like_the_coco_evaluator():
    # PTB tokenization lowercases and drops punctuation before METEOR / ROUGE-L / CIDEr
    got = score(["Blue Spice is a pub."], [["blue spice is a pub"]], ["meteor", "rouge_l"], "e2e")
    assert got == pytest.approx({"meteor": 100.0, "rouge_l": 100.0})
    hyps = ["The Eagle is a cheap coffee shop near Burger King.", "Blue Spice is a pub in the city centre."]
    refs = [
        [
            "The Eagle is a low-priced coffee shop near Burger King.",
            "Near Burger King, The Eagle coffee shop is cheap.",
        ],
        ["Blue Spice, a pub, is located in the city centre."],
    ]
    got = score(hyps, refs, ["bleu", "nist", "meteor", "rouge_l", "cider"], "e2e")
    pinned = {"bleu": 54.4835, "nist": 4.5885, "meteor": 44.8817, "rouge_l": 86.7094, "cider": 5.0570}
    assert got == pytest.approx(pinned, abs=1e-3)


def test_generation_eval_references_are_post_processed_and_padded_to_six():
    hyps, refs = prepare(["Aarhus's Airport."], [[f"Ref {i}!" for i in range(8)]], "webnlg")
    assert hyps == ["aarhus ' s airport ."]
    assert refs == [[f"ref {i} !" for i in range(6)]]
    _, refs = prepare(["x"], [["One.", "Two."]], "webnlg")
    assert refs == [["one .", "two .", "one .", "one .", "one .", "one ."]]  # gpt2_decode.py pads with ref 0


def test_seen_and_unseen_are_scored_apart():
    got = score_split("test", ["a b c d", "e f g h"], [["a b c d"], ["w x y z"]], ["bleu"], "webnlg", [True, False])
    assert set(got) == {"test/bleu", "test_seen/bleu", "test_unseen/bleu", "test/empty_predictions"}
    assert got["test_seen/bleu"] == pytest.approx(100) and got["test_unseen/bleu"] == 0


def test_bad_requests_fail_with_the_fix(monkeypatch):
    with pytest.raises(UserError, match="unknown NLG metric"):
        score(["a"], [["a"]], ["bertscore"])
    with pytest.raises(UserError, match="protocol"):
        score(["a"], [["a"]], ["bleu"], "wmt")
    monkeypatch.setattr(nlg_metrics.shutil, "which", lambda _: None)
    with pytest.raises(UserError, match="apt-get install default-jre"):
        score(["a"], [["a"]], ["meteor"])


def test_prediction_files_one_line_per_input(tmp_path):
    write_predictions(tmp_path, "test", ["c1", "c2"], ["p 1", "two\nlines"], [["r1", "r2"], ["r3"]])
    assert (tmp_path / "test.pred.txt").read_text() == "p 1\ntwo lines\n"
    assert (tmp_path / "test.ref.txt").read_text() == "r1\nr2\n\nr3\n\n"  # measure_scores.py multi-ref format
    rows = [json.loads(line) for line in (tmp_path / "test.jsonl").read_text().splitlines()]
    assert rows[1] == {"context": "c2", "prediction": "two lines", "references": ["r3"]}


def test_missing_nlg_extra_is_named_before_any_data_loads(monkeypatch):
    from adamix_runner import pipelines

    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # as if `pip install adamix-runner` without [nlg]
    for module in ("adamix_runner.pipelines.generation", "adamix_runner.evaluation.nlg_metrics"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.delattr(pipelines, "generation", raising=False)
    with pytest.raises(UserError, match=r"sacrebleu is missing\): pip install 'adamix-runner\[nlg\]'"):
        pipelines.for_kind("generation")


def _oracle_bleu(hyps: list[list[str]], refs: list[list[list[str]]]) -> float:
    """Corpus BLEU-4 from its definition (Papineni et al.): clipped n-gram matches against the most frequent
    reference count, closest reference length (shorter wins a tie), no smoothing."""
    from collections import Counter

    matches, totals, hyp_length, ref_length = [0] * 4, [0] * 4, 0, 0
    for hyp, group in zip(hyps, refs, strict=True):
        hyp_length += len(hyp)
        ref_length += min((abs(len(r) - len(hyp)), len(r)) for r in group)[1]
        for n in range(1, 5):
            grams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
            most = Counter()
            for ref in group:
                most |= Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(count, most[gram]) for gram, count in grams.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    precision = math.exp(sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / 4)
    penalty = 1.0 if hyp_length > ref_length else math.exp(1 - ref_length / hyp_length)
    return 100 * penalty * precision


def _oracle_rouge_l(hyps: list[list[str]], refs: list[list[list[str]]], beta: float = 1.2) -> float:
    """COCO's ROUGE-L: per hypothesis the best LCS precision and the best LCS recall over its references, F_β."""

    def lcs(a: list[str], b: list[str]) -> int:
        row = [0] * (len(b) + 1)
        for x in a:
            previous, row = row, [0]
            for j, y in enumerate(b):
                row.append(previous[j] + 1 if x == y else max(previous[j + 1], row[j]))
        return row[-1]

    scores = []
    for hyp, group in zip(hyps, refs, strict=True):
        precision = max(lcs(ref, hyp) / len(hyp) for ref in group)
        recall = max(lcs(ref, hyp) / len(ref) for ref in group)
        scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision) if precision else 0.0)
    return 100 * sum(scores) / len(scores)


def test_the_e2e_pins_agree_with_bleu_and_rouge_l_from_their_definitions():
    """The pinned E2E BLEU (13a tokens, lowercased) and ROUGE-L (PTB tokens: lowercased, punctuation dropped) of
    test_e2e_protocol_tokenizes_like_the_coco_evaluator, recomputed without sacrebleu or pycocoevalcap."""
    import re

    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    hyps = ["The Eagle is a cheap coffee shop near Burger King.", "Blue Spice is a pub in the city centre."]
    refs = [
        [
            "The Eagle is a low-priced coffee shop near Burger King.",
            "Near Burger King, The Eagle coffee shop is cheap.",
        ],
        ["Blue Spice, a pub, is located in the city centre."],
    ]
    tokenize = Tokenizer13a()
    bleu = _oracle_bleu(
        [tokenize(h.lower()).split() for h in hyps], [[tokenize(r.lower()).split() for r in g] for g in refs]
    )
    assert bleu == pytest.approx(54.4835, abs=1e-3)

    def ptb(text: str) -> list[str]:
        return re.sub(r"[^\w\s-]", " ", text.lower()).split()

    rouge = _oracle_rouge_l([ptb(h) for h in hyps], [[ptb(r) for r in g] for g in refs])
    assert rouge == pytest.approx(86.7094, abs=1e-3)
