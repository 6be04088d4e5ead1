"""`adamix-evaluate RUN_DIR [RUN_DIR ...] --rules merge,random,fixed,ensemble,experts --random-eval-seeds N`.

Train once, evaluate many: a finished AdaMix run (adapter or LoRA mixture, NLU or NLG) is rebuilt from its folder
with its unmerged experts (``adapter/experts.safetensors``, or an adapter saved unmerged) and evaluated under other
inference rules, without retraining. Each evaluation lands in the run folder as one JSON file
(``{"rule", "eval_seed", "expert", "metrics", "primary_metric"}``), which ``adamix-report`` reads:

=============  ==================================  ===============================================================
rule           file                                what it evaluates
=============  ==================================  ===============================================================
merge          evaluations/merge.json              the mean of the experts (what the run reported)
random         evaluations/random-seed<k>.json     one random expert per sequence; k = 0..N-1, the eval generator
                                                   seeded with seed + 1 + k (k = 0 is what a run trained with
                                                   peft.inference=random reports: each evaluation restarts it)
fixed          evaluations/fixed-expert<i>.json    every input to expert i (--fixed-expert, default 0: the paper's
                                                   "first adaptation module")
ensemble       evaluations/ensemble.json           the mean of the experts' outputs
experts        evaluations/fixed-expert<i>.json    each single expert, i = 0..M-1
=============  ==================================  ===============================================================

Evaluations already present are skipped (``--overwrite`` redoes them). Generation runs write their predictions
under ``evaluations/<name>/predictions/``, leaving the run's own predictions alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adamix_runner.errors import UserError
from adamix_runner.evaluate import RULES, evaluate_run, open_run


def parse_rules(text: str) -> list[str]:
    rules = [rule.strip() for rule in text.split(",") if rule.strip()]
    unknown = [rule for rule in rules if rule not in RULES]
    if unknown or not rules:
        raise UserError(f"--rules {text!r}: each rule must be one of {', '.join(RULES)}.")
    return rules


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="adamix-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="completed AdaMix run folders (.../seed<k>)")
    parser.add_argument("--rules", default="merge,random,fixed,ensemble", help=f"comma-separated, of {RULES}")
    parser.add_argument("--random-eval-seeds", type=int, default=1, help="random-routing evaluations per run")
    parser.add_argument("--fixed-expert", type=int, default=0, help="the expert of rule `fixed`")
    parser.add_argument("--overwrite", action="store_true", help="redo evaluations already present")
    args = parser.parse_args(argv)
    try:
        rules = parse_rules(args.rules)
        if args.random_eval_seeds < 1:
            raise UserError(f"--random-eval-seeds must be >= 1, got {args.random_eval_seeds}.")
        for folder in args.run_dirs:
            open_run(folder)  # every folder is checked before the first model is built
        for folder in args.run_dirs:
            written = evaluate_run(folder, rules, args.random_eval_seeds, args.fixed_expert, args.overwrite)
            print(f"{folder}: {len(written)} evaluation(s) written" + ("" if written else " (all present)"))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
