"""The report's sheet, Markdown, LaTeX and CSV of a built table, which mutation testing (`make mutate`,
docs/TESTING.md) found pinned only in parts: here every line of two tables (our line, the paper's, the difference;
a row with no values, a not-run row, rows with their own recipe, a bf16 row; with and without an average, 3 seeds
and 1) and the text formats of one sheet, character for character."""

from __future__ import annotations

from pathlib import Path

from adamix_runner.report import render
from adamix_runner.report.aggregate import SeedValues
from adamix_runner.report.declaration import Column
from adamix_runner.report.grid import Row, Table
from adamix_runner.report.runs import RunRecord

COLUMNS = [Column("rte", "rte", "validation/accuracy", "RTE"), Column("mrpc", "mrpc", "validation/accuracy", "MRPC")]
PAPER_RECIPE, TOY_RECIPE, LORA_RECIPE = "paper: Table 9 recipe", "ours: toy recipe", "ours: lora recipe"
BF16 = RunRecord(Path("unused"), "completed", {}, runtime={"mixed_precision": "bf16"})


def _row(row_id: str, label: str, rte: SeedValues, mrpc: SeedValues, sources: tuple[str, str], **fields) -> Row:
    return Row(row_id, label, {"rte": rte, "mrpc": mrpc}, dict(zip(("rte", "mrpc"), sources, strict=True)), **fields)


def _three_seed_table() -> Table:
    rows = [
        _row("adamix", "AdaMix", SeedValues({0: 70.0, 1: 72.0}), SeedValues({0: 80.0}, {1: "failed"}),
             (PAPER_RECIPE, TOY_RECIPE), params=[811_392, 900_000], paper={"rte": 72.0, "mrpc": 81.5},
             paper_params="0.8M", average=SeedValues({0: 75.0}), paper_average=76.75, runs={"rte": [BF16]}),
        _row("houlsby", "Houlsby", SeedValues(statuses={0: "failed"}), SeedValues(), (PAPER_RECIPE, PAPER_RECIPE),
             paper={"rte": 69.0, "mrpc": None}),
        _row("list", "LiST", SeedValues(note="not run"), SeedValues(note="not run"), ("", ""),
             paper={"rte": 74.0, "mrpc": "n/a"}, not_run="no LiST in this runner"),
        _row("lora", "LoRA", SeedValues({0: 60.0}), SeedValues({0: 65.0}), (LORA_RECIPE, LORA_RECIPE),
             own_source=LORA_RECIPE, params=[811_392], average=SeedValues({0: 62.5})),
        _row("lora4", "LoRA r=4", SeedValues({0: 61.0}), SeedValues({0: 66.0}), (LORA_RECIPE, LORA_RECIPE),
             own_source=LORA_RECIPE, params=[900_000], average=SeedValues({0: 63.5})),
    ]  # fmt: skip
    return Table("toy", "toy table", COLUMNS, rows, "roberta-large", 3, "Avg.", notes=["a table note"])


def test_every_line_of_a_three_seed_table_with_an_average():
    page = render.sheet(_three_seed_table())
    assert page.title == "toy: toy table"
    assert page.header == ["Method", "#Param", "RTE", "MRPC", "Avg.", "Recipe"]
    assert page.rows == [
        ["AdaMix", "0.81M/0.90M", "71.00 ± 1.41 (2)", "80.00 (1) [1 failed]*", "75.00 (1)",
         "ours+paper; bf16, not the official fp32"],
        ["  paper", "0.8M", "72.0", "81.5", "76.75", ""],
        ["  Δ (ours − paper)", "", "-1.00", "-1.50", "-1.75", ""],  # 71 − 72, 80 − 81.5, 75 − 76.75
        ["Houlsby", "", "failed", "missing", "–", "paper"],
        ["  paper", "", "69.0", "–", "–", ""],  # no value of ours: no difference line
        ["LiST", "", "not run", "not run", "–", "not run: no LiST in this runner"],
        ["  paper", "", "74.0", "n/a", "–", ""],
        ["LoRA", "0.81M", "60.00 (1)*", "65.00 (1)*", "62.50 (1)", "ours"],
        ["LoRA r=4", "0.90M", "61.00 (1)*", "66.00 (1)*", "63.50 (1)", "ours"],
    ]  # fmt: skip
    assert page.notes == [
        "ours: mean ± sample std (n seeds) of seeds 0..2, model roberta-large; a word where a cell has no value "
        "(missing: no run; failed; not run: no method)",
        "*: the cell's recipe is ours, not the paper's (Recipe column: paper / ours)",
        "recipe of RTE, MRPC: paper: Table 9 recipe",
        "recipe of MRPC: ours: toy recipe",
        "recipe of the rows LoRA; LoRA r=4: ours: lora recipe",
        "a table note",
    ]


def _one_seed_table() -> Table:
    row = _row("adamix", "AdaMix", SeedValues({0: 70.0}), SeedValues({0: 80.0}), (PAPER_RECIPE, PAPER_RECIPE),
               params=[811_392], paper={"rte": 72.5, "mrpc": "n/a"}, paper_params="0.8M")  # fmt: skip
    return Table("one", "one seed", COLUMNS, [row], None, 1, params_decimals=1)


def test_a_one_seed_table_without_an_average_or_a_model():
    page = render.sheet(_one_seed_table())
    assert page.header == ["Method", "#Param", "RTE", "MRPC", "Recipe"]
    assert page.rows == [
        ["AdaMix", "0.8M", "70.00 (1)", "80.00 (1)", "paper"],
        ["  paper", "0.8M", "72.5", "n/a", ""],
        ["  Δ (ours − paper)", "", "-2.50", "", ""],  # a paper word has no difference
    ]
    assert page.notes[0] == (
        "ours: mean ± sample std (n seeds) of seed 0; a word where a cell has no value (missing: no run; failed; "
        "not run: no method)"
    )
    two_seeds = render.sheet(Table("two", "t", COLUMNS, [], None, 2)).notes[0]
    assert two_seeds.startswith("ours: mean ± sample std (n seeds) of seeds 0..1;")


def test_the_records_of_a_table_one_per_cell_and_average():
    records = render.records(_three_seed_table())
    assert len(records) == 3 + 2 + 2 + 3 + 3  # the rows with an average have a record of it
    assert records[0] == {
        "table": "toy", "row": "adamix", "label": "AdaMix", "column": "rte", "task": "rte",
        "metric": "validation/accuracy", "mean": "71", "std": "1.41421", "n": 2, "status": "ok",
        "values": '{"0": 70.0, "1": 72.0}', "paper": 72.0, "difference": "-1.00",
        "params_inference": "811392/900000", "params_paper": "0.8M", "recipe_source": PAPER_RECIPE,
    }  # fmt: skip
    assert (records[1]["status"], records[1]["n"], records[1]["mean"]) == ("failed", 1, "80")
    assert records[2] == records[0] | {
        "column": "average", "task": "", "metric": "average", "mean": "75", "std": "", "n": 1,
        "values": '{"0": 75.0}', "paper": 76.75, "difference": "-1.75", "recipe_source": "",
    }  # fmt: skip
    houlsby_rte, houlsby_mrpc = records[3], records[4]
    assert (houlsby_rte["mean"], houlsby_rte["n"], houlsby_rte["status"], houlsby_rte["values"]) == (
        "",
        0,
        "failed",
        "{}",
    )
    assert (houlsby_mrpc["paper"], houlsby_mrpc["difference"], houlsby_mrpc["status"]) == ("", "", "missing")
    assert (records[6]["paper"], records[6]["difference"], records[6]["params_paper"]) == ("n/a", "", "")
    assert records[7]["metric"] == "validation/accuracy"
    no_metric = Table("t", "t", [Column("rte", "rte", None, "RTE")], [_three_seed_table().rows[3]], None, 1)
    assert render.records(no_metric)[0]["metric"] == "primary"


SHEET = render.Sheet("t_1: 5% | more", ["Method", "#Param", "A_B"], [["x|y", "0.8M", "1.00 ± 0.50 (2) Δ −1 – ‡"]],
                     ["note & 1", "note $2"])  # fmt: skip


def test_markdown_of_a_sheet():
    assert render.markdown([SHEET, SHEET]) == "\n".join(
        [
            "## t_1: 5% | more", "", "| Method | #Param | A_B |", "|---|---|---|",
            "| x\\|y | 0.8M | 1.00 ± 0.50 (2) Δ −1 – ‡ |", "", "- note & 1", "- note $2", "",
        ] * 2
    )  # fmt: skip


def test_latex_of_a_sheet():
    table = "\n".join(
        [
            r"\begin{table}[t]", r"\centering\small", r"\begin{tabular}{lrr}", r"\toprule",
            r"Method & \#Param & A\_B \\", r"\midrule",
            r"x|y & 0.8M & 1.00 $\pm$ 0.50 (2) $\Delta$ -1 -- $^\ddagger$ \\", r"\bottomrule", r"\end{tabular}",
            r"\caption{t\_1: 5\% | more. note \& 1; note \$2}", r"\end{table}",
        ]
    )  # fmt: skip
    assert render.latex([SHEET, SHEET]) == table + "\n\n" + table + "\n"


def test_write_puts_the_three_formats_side_by_side(tmp_path):
    records = render.records(_one_seed_table())
    paths = render.write(tmp_path / "new" / "reports", "one", [SHEET], records)  # its parent is made too
    assert render.write(tmp_path / "new" / "reports", "one", [SHEET], records) == paths  # a rewrite replaces them
    assert [path.name for path in paths] == ["one.md", "one.tex", "one.csv"]
    assert paths[0].read_text() == render.markdown([SHEET]) and paths[1].read_text() == render.latex([SHEET])
    lines = paths[2].read_text().splitlines()
    assert lines[0] == ",".join(records[0]) and len(lines) == 1 + len(records)
    assert render.write_csv(tmp_path / "empty.csv", []).read_bytes() == b"table\r\n"


def test_a_row_trained_in_two_precisions_names_both_and_values_keep_six_decimals():
    fp16 = RunRecord(Path("unused"), "completed", {}, runtime={"mixed_precision": "fp16"})
    row = _row("x", "X", SeedValues({0: 71.23456789}), SeedValues(), (PAPER_RECIPE, PAPER_RECIPE),
               runs={"rte": [BF16], "mrpc": [fp16]})  # fmt: skip
    table = Table("t", "t", COLUMNS, [row], None, 1)
    assert render.sheet(table).rows[0][-1] == "paper; bf16/fp16, not the official fp32"
    assert render.records(table)[0]["values"] == '{"0": 71.234568}'
