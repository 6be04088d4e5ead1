"""NLG metrics offline, under the two official protocols (method reference §6.2), and the prediction files.

`protocol="e2e"` is the E2E challenge's `measure_scores.py -p` (what the E2E table reports):
  bleu   sacrebleu corpus BLEU, lowercased, 13a tokenization, closest reference length, no smoothing (= its
         pymteval BLEU);
  nist   mteval-v13a NIST (n=5) as its pymteval ports it, on the same lowercased 13a tokens (implemented here);
  meteor, rouge_l, cider   pycocoevalcap's METEOR 1.5 (Java), ROUGE-L (β=1.2) and CIDEr-D on the PTB-tokenized,
         lowercased, punctuation-free texts, as its COCO evaluator.
`protocol="webnlg"` is GenerationEval's `eval.py -nr 6` after `gpt2_decode.py --tokenize --lower` (WebNLG, DART):
  texts are lowercased and split at every non-word character; each input keeps its first 6 references, padded
  with the first one; bleu is sacrebleu 13a BLEU (multi-bleu-detok), meteor pycocoevalcap's METEOR 1.5 (the
  same jar, `-l en -norm`), ter the mean over inputs of the lowest per-reference TER (edits / reference length,
  sacrebleu's tercom port where GenerationEval calls pyter; an empty reference scores 1).
Scales follow the paper's tables: bleu, meteor, rouge_l ×100; nist and cider as is; ter a fraction.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from collections import Counter
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import TER
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from adamix_runner.errors import UserError

PROTOCOLS = ("e2e", "webnlg")
METRICS = ("bleu", "nist", "meteor", "rouge_l", "cider", "ter")
GENERATION_EVAL_REFS = 6  # run_eval_{webnlg,dart}.sh: gpt2_decode.py --ref_num 6, eval.py -nr 6
JAVA_METRICS = {"meteor", "rouge_l", "cider"}  # rouge_l and cider need Java for the PTB tokenizer (e2e only)
NIST_BETA = -math.log(0.5) / math.log(1.5) ** 2  # mteval-v13a: BP = 0.5 when the output is 2/3 of the refs


def _require_java() -> None:
    if shutil.which("java") is None:
        raise UserError(
            "METEOR 1.5 (and the E2E protocol's PTB tokenizer) runs pycocoevalcap's Java jars, and no `java` is "
            "on PATH; install a Java runtime (Debian/Ubuntu: `apt-get install default-jre`) or drop meteor / "
            "rouge_l / cider from task.metrics"
        )


@cache
def _meteor():
    """One METEOR JVM per process (it takes seconds to start and is reused by every call)."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def gpt2_decode_postprocess(text: str) -> str:
    """gpt2_decode.py --lower --tokenize: lowercase, then split at (and keep) every non-word character."""
    return " ".join(" ".join(re.split(r"(\W)", text.lower())).split())


TOKENIZE_13A = Tokenizer13a()


def _tokens_13a(text: str) -> list[str]:
    return TOKENIZE_13A(text.lower()).split()


def nist(predictions: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 5) -> float:
    """mteval-v13a NIST: information-weighted n-gram precision (matches clipped by the most frequent reference)
    times exp(-β·log²(min(1, output length / summed average reference length)))."""
    hyps = [_tokens_13a(p) for p in predictions]
    refs = [[_tokens_13a(r) for r in group] for group in references]
    counts: Counter = Counter()
    for group in refs:
        for ref in group:
            counts[()] += len(ref)
            counts.update(tuple(ref[i : i + n]) for n in range(1, max_n + 1) for i in range(len(ref) - n + 1))
    total = 0.0
    for n in range(1, max_n + 1):
        info, hyp_ngrams = 0.0, 0
        for hyp, group in zip(hyps, refs, strict=True):
            grams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
            best: Counter = Counter()
            for ref in group:
                best |= Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
            hyp_ngrams += sum(grams.values())
            info += sum(min(c, best[g]) * math.log2(counts[g[:-1]] / counts[g]) for g, c in grams.items() if best[g])
        total += info / hyp_ngrams if hyp_ngrams else 0.0
    ref_length = sum(sum(len(r) for r in group) / len(group) for group in refs)
    ratio = min(1.0, sum(len(h) for h in hyps) / ref_length) if ref_length else 0.0
    return total * (math.exp(-NIST_BETA * math.log(ratio) ** 2) if ratio > 0 else 0.0)


def _ter(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    ter = TER()
    per_input = [
        min(ter.sentence_score(hyp, [ref]).score / 100 if ref else 1.0 for ref in group)
        for hyp, group in zip(predictions, references, strict=True)
    ]
    return sum(per_input) / len(per_input)


def _coco(names: set[str], predictions, references, ptb: bool) -> dict[str, float]:
    """METEOR / ROUGE-L / CIDEr through pycocoevalcap, on PTB-tokenized texts for the E2E protocol."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    _require_java()
    gts = {i: list(group) for i, group in enumerate(references)}
    res = {i: [hyp] for i, hyp in enumerate(predictions)}
    if ptb:
        tokenizer = PTBTokenizer()
        gts = tokenizer.tokenize({i: [{"caption": r} for r in group] for i, group in gts.items()})
        res = tokenizer.tokenize({i: [{"caption": h[0]}] for i, h in res.items()})
    scorers = {"meteor": (_meteor, 100.0), "rouge_l": (Rouge, 100.0), "cider": (Cider, 1.0)}
    return {
        name: float(factory().compute_score(gts, res)[0]) * scale
        for name, (factory, scale) in scorers.items()
        if name in names
    }


def prepare(predictions: Sequence[str], references: Sequence[Sequence[str]], protocol: str):
    """The texts a protocol scores: E2E as they are; GenerationEval post-processed, 6 references each."""
    if protocol not in PROTOCOLS:
        raise UserError(f"NLG protocol {protocol!r} is not one of {PROTOCOLS}")
    if protocol == "e2e":
        return list(predictions), [list(group) for group in references]
    hyps = [gpt2_decode_postprocess(p) for p in predictions]
    refs = []
    for group in references:
        group = [gpt2_decode_postprocess(r) for r in group[:GENERATION_EVAL_REFS]]
        refs.append(group + [group[0]] * (GENERATION_EVAL_REFS - len(group)))
    return hyps, refs


def score(
    predictions: Sequence[str], references: Sequence[Sequence[str]], names: Sequence[str], protocol: str = "e2e"
) -> dict[str, float]:
    """`{name: value}` for each metric in `names`; one prediction and a non-empty reference list per input."""
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise UserError(f"unknown NLG metric(s) {unknown}; available: {', '.join(METRICS)}")
    if len(predictions) != len(references) or not predictions or not all(references):
        raise ValueError("score() needs one prediction and at least one reference per input, and inputs")
    hyps, refs = prepare(predictions, references, protocol)
    results: dict[str, float] = {}
    if "bleu" in names:
        width = max(len(group) for group in refs)
        streams = [[group[k] if k < len(group) else None for group in refs] for k in range(width)]
        bleu = sacrebleu.corpus_bleu(hyps, streams, lowercase=protocol == "e2e", tokenize="13a", smooth_method="none")
        results["bleu"] = bleu.score
    if "nist" in names:
        results["nist"] = nist(hyps, refs)
    if "ter" in names:
        results["ter"] = _ter(hyps, refs)
    coco = JAVA_METRICS & set(names)
    if coco:
        results.update(_coco(coco, hyps, refs, ptb=protocol == "e2e"))
    return {name: results[name] for name in names}


def score_split(split, predictions, references, names, protocol, seen=None) -> dict[str, float]:
    """`{"<split>/<name>": value}`; with WebNLG's per-input `seen` flags also `<split>_seen/…` and
    `<split>_unseen/…` (gpt2_decode.py --filter seen / unseen: each subset scored on its own).

    `<split>/empty_predictions` counts the empty completions, and any empty one is also warned about: a model that
    writes nothing scores 0, which must not read as a (bad) score of real text."""
    empty = sum(1 for prediction in predictions if not prediction.strip())
    if empty:
        warnings.warn(
            f"{empty} of {len(predictions)} {split} predictions are empty (see predictions/{split}.pred.txt); "
            "their metrics score nothing the model wrote",
            RuntimeWarning,
            stacklevel=2,
        )
    results = {f"{split}/{k}": v for k, v in score(predictions, references, names, protocol).items()}
    results[f"{split}/empty_predictions"] = float(empty)
    for flag, tag in ((True, "seen"), (False, "unseen")) if seen is not None else ():
        chosen = [i for i, value in enumerate(seen) if value == flag]
        if chosen:
            part = score([predictions[i] for i in chosen], [references[i] for i in chosen], names, protocol)
            results.update({f"{split}_{tag}/{k}": v for k, v in part.items()})
    return results


def write_predictions(folder: Path, split: str, contexts, predictions, references) -> Path:
    """`<split>.pred.txt` (one line per input), `<split>.ref.txt` (each input's references, then an empty line:
    the multi-reference format of the E2E `measure_scores.py`) and `<split>.jsonl` with the inputs too."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [p.replace("\n", " ") for p in predictions]
    (folder / f"{split}.pred.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    blocks = ["".join(f"{r.replace(chr(10), ' ')}\n" for r in group) + "\n" for group in references]
    (folder / f"{split}.ref.txt").write_text("".join(blocks), encoding="utf-8")
    rows = zip(contexts, lines, references, strict=True)
    with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as out:
        for context, prediction, group in rows:
            out.write(json.dumps({"context": context, "prediction": prediction, "references": list(group)}) + "\n")
    return folder / f"{split}.pred.txt"
