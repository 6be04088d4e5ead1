"""The paper's numbers in src/adamix_runner/report/paper_results.yaml, pinned against the markdown tables of the
method reference (../shared/reference/adamix-method.md §7) and the Figure 5 ranges (fewshot-and-tables.md §3.2)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adamix_runner.report import paper

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
METHOD = REFERENCE / "adamix-method.md"
FEWSHOT = REFERENCE / "fewshot-and-tables.md"
needs_reference = pytest.mark.skipif(
    not METHOD.exists(), reason="../shared/reference is absent (the method reference)"
)

GLUE = {
    "MNLI": ("mnli", ["accuracy"]),
    "QNLI": ("qnli", ["accuracy"]),
    "SST2": ("sst2", ["accuracy"]),
    "QQP": ("qqp", ["accuracy", "f1"]),
    "MRPC": ("mrpc", ["accuracy", "f1"]),
    "CoLA": ("cola", ["matthews"]),
    "RTE": ("rte", ["accuracy"]),
    "STS-B": ("stsb", ["pearson"]),
}
NLG = {"BLEU": "bleu", "NIST": "nist", "MET": "meteor", "ROUGE-L": "rouge_l", "CIDEr": "cider", "TER": "ter"}
TABLES = [("table1", None), ("table2", None), ("table3", "e2e"), ("table4", "webnlg"), ("table5", "dart")]


def _markdown_tables(text: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= {"-"} for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _cell(text: str, metrics: list[str]) -> dict[str, float]:
    """'92.3/89.8' -> both; '-/87.4' -> F1 only; '85.5 (printed without slash)' -> one unnamed number."""
    if len(metrics) == 1:
        return {metrics[0]: float(text)}
    if "/" not in text:
        return {"?": float(re.match(r"[\d.]+", text).group())}
    return {m: float(v) for m, v in zip(metrics, text.split("/"), strict=True) if v != "-"}


def _reference_rows(table: list[list[str]], task: str | None) -> dict[str, dict]:
    header, *body = table
    labels = [row[0] for row in body]
    parsed = {}
    for row in body:
        key = row[0] if labels.count(row[0]) == 1 else f"{row[0]} ({row[1]})"
        entry = {"params": row[1], "results": {}}
        for name, text in zip(header[2:], row[2:], strict=True):
            first = name.split()[0]
            if first == "Avg":
                entry["avg"] = float(text)
            elif task is None:
                glue_task, metrics = GLUE[first]
                entry["results"][glue_task] = _cell(text, metrics)
            else:
                entry["results"].setdefault(task, {})[NLG[first]] = float(text)
        parsed[key] = entry
    return parsed


def _section_7() -> str:
    text = METHOD.read_text(encoding="utf-8")
    return text[text.index("## 7. Result tables") : text.index("### 7.4")]


@needs_reference
@pytest.mark.parametrize(("index", "table", "task"), [(i, t, task) for i, (t, task) in enumerate(TABLES)])
def test_paper_numbers_equal_the_method_references_tables(index, table, task):
    reference = _reference_rows(_markdown_tables(_section_7())[index], task)
    ours = paper.rows(table)
    assert list(ours) == list(reference)  # every row, the paper's labels and order
    for key, expected in reference.items():
        row = ours[key]
        assert row["params"] == expected["params"], key
        assert row.get("avg") == expected.get("avg"), key
        for name, values in expected["results"].items():
            if "?" in values:  # a number printed without its Acc/F1 slash: the file keeps it under one metric
                assert list(row["results"][name].values()) == [values["?"]], key
            else:
                assert row["results"][name] == values, (key, name)


@needs_reference
def test_figure5_ranges_equal_the_few_shot_reference():
    if not FEWSHOT.exists():
        pytest.skip("../shared/reference/fewshot-and-tables.md is absent")
    text = FEWSHOT.read_text(encoding="utf-8")
    section = text[text.index("**Figure 5**") : text.index("**Table 8**")]
    (table,) = _markdown_tables(section)
    names = {"MNLI": "mnli", "SST-2": "sst2", "QNLI": "qnli", "MRPC (acc)": "mrpc", "QQP (acc)": "qqp"}
    names |= {"STS-B": "stsb", "CoLA": "cola", "RTE": "rte"}
    data = paper.load()["figure5"]["models"]
    for task, bert_range, bert, roberta_range, roberta in table[1:]:
        for model, span, merged in [("bert-base", bert_range, bert), ("roberta-large", roberta_range, roberta)]:
            entry = data[model][names[task]]
            assert entry["random"] == [float(v) for v in span.split("–")], (model, task)
            assert entry["adamix"] == float(merged), (model, task)


def test_tables_without_retrieved_numbers_say_so():
    for table in ("table6", "table7", "table8", "table9", "table10"):
        entry = paper.load()[table]
        assert entry["numbers"] is None and "no numbers retrieved" in entry["note"]
        assert paper.rows(table) == {}
