"""`adamix-export RUN_DIR --to peft|folded`: a completed run's adapter in a format other tools load.

peft    a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) for `lora` and `adamix_lora` runs:
        `peft.PeftModel.from_pretrained(base_model, folder)`
folded  the LoRA update added into the backbone weights, saved with `save_pretrained` (a plain transformers
        model); also `full` and `bitfit` runs, which have nothing to fold
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adamix_runner.build import rebuild_run
from adamix_runner.errors import UserError
from adamix_runner.export import export_folded, export_peft_lora
from adamix_runner.run_folder import EXPORT

FORMATS = ("peft", "folded")


def export_run(run_dir: Path, fmt: str, out: Path | None = None) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"--to {fmt!r} is not one of {', '.join(FORMATS)}.")
    cfg, model = rebuild_run(run_dir)
    out = out or run_dir / EXPORT / fmt
    try:
        if fmt == "peft":
            return export_peft_lora(model, cfg.model.hub_id or cfg.model.path, out)
        return export_folded(model, out)
    except ValueError as error:
        raise UserError(f"cannot export a peft={cfg.peft.method} run as {fmt}: {error}") from error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="adamix-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a completed run folder: outputs/runs/<task>/.../seed<k>")
    parser.add_argument("--to", choices=FORMATS, required=True, help="peft (LoRA methods) or folded")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default RUN_DIR/export/<format>)")
    args = parser.parse_args(argv)
    try:
        folder = export_run(args.run_dir, args.to, args.out)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(folder)
