"""The real GPT-2 byte-level BPE, offline: whisper's `gpt2.tiktoken` converted to a transformers tokenizer.

No package on PyPI ships GPT-2's `vocab.json`/`merges.txt`, but the openai-whisper sdist carries
`gpt2.tiktoken`, byte-identical to tiktoken's `r50k_base` (the GPT-2 vocabulary: 50,257 tokens, `<|endoftext|>` =
50256). It is fetched at install time (`python -m adamix_runner.models.tokenizer_assets`, which prints the folder),
checked by sha256, converted with transformers' TikTokenConverter and saved as a GPT2TokenizerFast under
`$ADAMIX_CACHE_DIR/gpt2-tokenizer` (default `~/.cache/adamix-runner/gpt2-tokenizer`). Every GPT-2 size uses this
one vocabulary, so the GPT-2 configs need no hub for their tokenizer.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from adamix_runner.sources.sdist import SdistMember, cache_root

# source only: the whisper wheel would pull torch, triton, numba
TIKTOKEN_FILE = SdistMember(
    package="openai-whisper==20250625",
    archive="openai_whisper-20250625.tar.gz",
    member="openai_whisper-20250625/whisper/assets/gpt2.tiktoken",
    sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    scratch="/tmp/wh",
    then="pass model.tokenizer=/path/to/a/gpt2/tokenizer (a folder with tokenizer.json)",
)
# tiktoken's r50k_base split pattern (tiktoken_ext/openai_public.py), i.e. GPT-2's pre-tokenizer regex
R50K_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOS = "<|endoftext|>"
FOLDER = "gpt2-tokenizer"


def _convert(tiktoken_file: Path, target: Path) -> None:
    from transformers import GPT2TokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(
        vocab_file=str(tiktoken_file), pattern=R50K_PATTERN, extra_special_tokens=[EOS]
    ).converted()
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=backend, bos_token=EOS, eos_token=EOS, unk_token=EOS, model_max_length=1024
    )
    tokenizer.save_pretrained(str(target))


def gpt2_tokenizer_path(cache_dir: Path | None = None) -> Path:
    """The folder of the converted GPT-2 tokenizer (tokenizer.json); built on first use."""
    target = Path(cache_dir or cache_root()) / FOLDER
    if (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw = Path(tmp) / "gpt2.tiktoken"
        raw.write_bytes(TIKTOKEN_FILE.fetch())
        built = Path(tmp) / FOLDER
        _convert(raw, built)
        try:
            built.rename(target)  # atomic: a concurrent builder's finished folder wins
        except OSError:
            if not (target / "tokenizer.json").is_file():
                shutil.rmtree(target, ignore_errors=True)
                built.rename(target)
    return target


if __name__ == "__main__":
    print(gpt2_tokenizer_path())
