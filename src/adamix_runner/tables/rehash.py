"""Carry run folders over when the run-folder hash changes: `python -m adamix_runner.tables.rehash [ROOT] [--apply]`.

A run folder is <root>/runs/<task>/<model>/<peft>/<hash>/seed<k>, the hash of what the run computes (run_folder.py
hashed_view). When that rule or the config's keys change (e.g. package files entering by name instead of by their
install path, a new train.* key), existing runs would be redone in new folders. This recomputes each run's hash
from the config it saved (.hydra/config.yaml), with the current rule; keys the config has gained since take their
default from conf/ (the run ran as the default does), keys it has lost are dropped, for the groups whose values
do not depend on a group choice (train, data, generation, fewshot, the top level). Without --apply it only lists
the moves; a folder whose new place is taken is left where it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adamix_runner.run_folder import CONFIG, RESULTS, RUNS, config_hash

FIXED_GROUPS = ("train", "data", "generation", "fewshot")


@dataclass(frozen=True)
class Move:
    source: Path
    target: Path
    state: str  # unchanged | move | moved | taken


def current_form(saved: DictConfig, default: DictConfig) -> DictConfig:
    """`saved` with the keys of the fixed groups as the current config has them (new ones at their default)."""
    data = OmegaConf.to_container(saved, resolve=False)
    fresh = OmegaConf.to_container(default, resolve=False)
    for group in FIXED_GROUPS:
        old = data.get(group) or {}
        data[group] = {key: old.get(key, value) for key, value in fresh[group].items()}
    for key, value in fresh.items():
        data.setdefault(key, value)
    return OmegaConf.create(data)


def plan_moves(root: Path, default: DictConfig) -> list[Move]:
    moves = []
    for saved_path in sorted(root.glob(f"{RUNS}/*/*/*/*/seed*/{CONFIG}")):
        seed_dir = saved_path.parent.parent
        new_hash = config_hash(current_form(OmegaConf.load(saved_path), default))
        target = seed_dir.parent.parent / new_hash / seed_dir.name
        state = "unchanged" if target == seed_dir else "taken" if target.exists() else "move"
        moves.append(Move(seed_dir, target, state))
    return moves


def apply(move: Move) -> Move:
    """Move one run folder and record its new hash in its results.json; an emptied hash folder is removed."""
    move.target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(move.source), str(move.target))
    results = move.target / RESULTS
    if results.is_file():
        record = json.loads(results.read_text())
        record["config_hash"] = move.target.parent.name
        results.write_text(json.dumps(record, indent=2))
    if not any(move.source.parent.iterdir()):
        move.source.parent.rmdir()
    return Move(move.source, move.target, "moved")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adamix_runner.tables.rehash", description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path("outputs"), help="an output_root (default outputs)")
    parser.add_argument("--apply", action="store_true", help="move the folders (default: list the moves only)")
    args = parser.parse_args(argv)
    from adamix_runner.config.compose import compose_config

    moves = plan_moves(args.root, compose_config())
    for move in moves:
        if move.state != "unchanged":
            done = apply(move) if args.apply and move.state == "move" else move
            print(f"{done.state:<6} {done.source} -> {done.target.parent.name}/{done.target.name}")
    counts = {state: sum(m.state == state for m in moves) for state in ("unchanged", "move", "taken")}
    verb = "moved" if args.apply else "to move (rerun with --apply)"
    print(
        f"{len(moves)} run folders: {counts['unchanged']} unchanged, {counts['move']} {verb}, {counts['taken']} taken"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
