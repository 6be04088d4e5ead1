"""`adamix-table`: launch (or, with --plan, only plan) the declared tables; what `make table1` ... calls.

adamix-table table1 [--profile paper|smoke] [--seeds N] [--launcher basic|local_parallel|slurm|submitit_local]
             [--plan]
             [OVERRIDE ...]             # extra adamix-run overrides for every run, e.g. model.path=...
adamix-table all ...                    # every paper table (not the real CPU ones, cpu_demo): grids, then inference
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adamix_runner.errors import UserError
from adamix_runner.tables import declaration, launch
from adamix_runner.tables.plan import TablePlan, make_plan

EXIT_USER_ERROR = 2
STATUS_MARK = {"completed": "done", "failed": "FAILED", "interrupted": "interrupted"}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="adamix-table", description=__doc__.split("\n")[0])
    parser.add_argument("table", help="a conf/table/<id>.yaml id, or 'all'")
    parser.add_argument("overrides", nargs="*", help="adamix-run overrides added to every run")
    parser.add_argument("--profile", default="paper", choices=declaration.PROFILES)
    parser.add_argument("--seeds", type=int, help="seed=0..N-1 (default: the table's, 3)")
    parser.add_argument("--launcher", default="basic", choices=launch.LAUNCHERS)
    parser.add_argument("--plan", action="store_true", help="print the runs and the estimate; run nothing")
    parser.add_argument("--bench-dir", type=Path, default=Path("outputs/bench"), help="measured throughputs")
    return parser.parse_intermixed_args(argv)


def render(plan: TablePlan) -> str:
    """The PLAN printout: one line per cell (run folder, each seed's state, the work, the hours left), the rows not
    run, the totals, the rates and tokens per row it used, and the recipe sources that are not the paper's."""
    decl, unit = plan.decl, f"{plan.device.upper()} h"
    lines = [f"{decl.id} ({plan.profile} profile): {decl.title}"]
    if decl.kind == "inference":
        lines.append(f"  evaluates the {list(decl.rows_from)} runs of {decl['from']} under {list(decl.rules)}")
    notes: list[str] = []
    header = f"  {'cell':<26} {'run folder':<54} {'seed:state':<20} {'samples x views x tokens/row':>30}"
    lines.append(f"{header} {'GFLOP/tok':>9} {'h/run':>7} {unit:>7}  recipe")
    for c in plan.cells:
        seeds = " ".join(f"{k}:{STATUS_MARK.get(s, '-')}" for k, s in c.status.items())
        work = "?" if c.samples is None else f"{c.samples:,} x {c.views} x {c.tokens.train:.0f}{c.tokens.how[0]}"
        per_token = c.weights.train_per_token(c.tokens.train + c.prefix) / 1e9
        run = c.run_flops()
        per_run = "?" if run is None else f"{run / c.rate.flops_per_s / 3600:.2f}"
        hours = c.hours()
        if c.cell.source != "paper" and c.cell.source not in notes:
            notes.append(c.cell.source)
        source = "paper" if c.cell.source == "paper" else f"ours [{notes.index(c.cell.source) + 1}]"
        shown = "?" if hours is None else f"{hours:.2f}"
        lines.append(
            f"  {c.cell.name:<26} {c.folder!s:<54} {seeds:<20} {work:>30} {per_token:>9.3f} {per_run:>7} "
            f"{shown:>7}  {source}"
        )
    for row in decl.rows if decl.kind == "grid" else []:
        if "not_run" in row:
            lines.append(f"  {row.id:<26} not run: {row.not_run}")
    left = plan.runs() - plan.completed()
    unknown = sum(len(c.left()) for c in plan.cells if c.hours() is None)
    estimate = f"estimate {plan.hours():.1f} {unit} for the rest"
    if unknown:
        known = f"{estimate}, not counting the {unknown}" if unknown < left else f"no estimate for the {unknown}"
        estimate = f"{known} runs marked ? (their tasks have no size in tables/sizes.py)"
    lines.append(
        f"  {len(plan.cells)} cells x {len(plan.seeds)} seeds = {plan.runs()} runs: {plan.completed()} completed, "
        f"{left} to run; {estimate}"
    )
    lines += [f"  rate: {source}" for source in plan.rates()]
    lines.append("  tokens/row: m measured on local data, s stated in the declaration, c the cap (an upper bound):")
    lines += [f"    {task}: {note}" for task, note in sorted({(c.cell.task, c.tokens.note) for c in plan.cells})]
    lines.append(
        "  (FLOPs: 4 per frozen and 6 per trained weight per token, x views, + attention, + every evaluation;"
    )
    lines.append("   generation adds the beam search, whose host-bound n-gram ban makes it slower than its FLOPs)")
    lines += [f"  [{n}] {note}" for n, note in enumerate(notes, 1)]
    return "\n".join(lines)


def _one(table_id: str, args: argparse.Namespace) -> int:
    plan = make_plan(
        table_id, args.profile, args.seeds, args.overrides, args.bench_dir, launch.launcher_overrides(args.launcher)
    )
    print(render(plan), flush=True)
    return 0 if args.plan else launch.launch(plan, args.launcher, args.overrides)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    ids = declaration.requested(args.table)
    codes = []
    for table_id in ids:
        try:
            codes.append(_one(table_id, args))
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            codes.append(EXIT_USER_ERROR)
    failed = [t for t, code in zip(ids, codes, strict=True) if code]
    if failed:
        print(f"tables with failures: {', '.join(failed)}", file=sys.stderr)
    sys.exit(max(codes, default=0))
