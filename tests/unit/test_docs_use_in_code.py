"""Every ```python block of docs/USE_IN_YOUR_CODE.md runs, top to bottom, in one namespace."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

PAGE = Path(__file__).parents[2] / "docs" / "USE_IN_YOUR_CODE.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
REQUIRES = re.compile(r"^# requires: (\w+)", re.MULTILINE)


def test_the_page_has_the_promised_examples():
    blocks = BLOCK.findall(PAGE.read_text())
    text = "\n".join(blocks)
    assert len(blocks) >= 6
    for promised in ("add_adamix(", "merge_adamix(", "AdaMixTrainer(", "PeftModel.from_pretrained(",
                     "merge_and_unload()", "register_adamix_lora(", "AdaMixSFTTrainer("):  # fmt: skip
        assert promised in text


def test_every_code_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_page"}
    for number, block in enumerate(BLOCK.findall(PAGE.read_text()), start=1):
        needed = REQUIRES.search(block)
        if needed and importlib.util.find_spec(needed.group(1)) is None:
            continue  # an optional dependency's example (TRL); the blocks after it do not use its names
        exec(compile(block, f"{PAGE.name}[block {number}]", "exec"), namespace)
