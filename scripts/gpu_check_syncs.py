"""Count host-device synchronisations inside training steps of one `adamix-run` (scripts/gpu_check.sh).

    python scripts/gpu_check_syncs.py OUT.json <adamix-run overrides, train.max_steps=N among them>

CUDA's sync debug mode warns at every operation that makes the host wait for the device. It is switched on after
optimizer step 3 (warm-up, allocator growth and compilation stay out) and off after step N, the last, so what is
counted is steps 4..N and nothing of set-up, evaluation or saving. Each warning is attributed to its innermost frame
in adamix_runner, accelerate, transformers or torch.nn; OUT.json gets the total, the count per step and the sites.
Without CUDA nothing is counted and OUT.json says so (the --dry-run of gpu_check.sh).
"""

from __future__ import annotations

import collections
import json
import sys
import traceback
import warnings
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

FIRST_WATCHED = 3  # sync mode on after this optimizer step
OURS = ("adamix_runner", "accelerate", "transformers", "torch/nn")


def _last_step(arguments: list[str]) -> int:
    steps = [int(a.split("=", 1)[1]) for a in arguments if a.startswith("train.max_steps=")]
    if not steps or steps[-1] <= FIRST_WATCHED:
        raise SystemExit(f"give train.max_steps=N with N > {FIRST_WATCHED}")
    return steps[-1]


def main() -> None:
    out, arguments = Path(sys.argv[1]), sys.argv[2:]
    last = _last_step(arguments)
    cuda = torch.cuda.is_available()
    state = {"step": 0}
    sites: collections.Counter[str] = collections.Counter()

    def after_step(optimizer, args, kwargs) -> None:
        state["step"] += 1
        if cuda and state["step"] in (FIRST_WATCHED, last):
            torch.cuda.set_sync_debug_mode("warn" if state["step"] == FIRST_WATCHED else "default")

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" not in str(message):
            return
        frames = [f for f in traceback.extract_stack()[:-1] if any(part in f.filename for part in OURS)]
        where = frames[-1] if frames else traceback.extract_stack()[-2]
        sites[f"{where.filename.rsplit('site-packages/', 1)[-1]}:{where.lineno}"] += 1

    register_optimizer_step_post_hook(after_step)
    warnings.simplefilter("always")
    warnings.showwarning = record
    from adamix_runner.cli import run as cli

    sys.argv = ["adamix-run", *arguments]
    code = 0
    try:
        cli.main()
    except SystemExit as stop:
        code = stop.code or 0
    watched = max(0, min(state["step"], last) - FIRST_WATCHED)
    total = sum(sites.values())
    summary = {
        "cuda": cuda,
        "exit_code": code,
        "steps_watched": watched,
        "syncs": total if cuda else None,
        "syncs_per_step": (total / watched if watched else None) if cuda else None,
        "sites": dict(sites.most_common()),
        "note": "counted with torch.cuda.set_sync_debug_mode" if cuda else "no CUDA: nothing counted",
    }
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    sys.exit(code)


if __name__ == "__main__":
    main()
