"""The real GPT-2 byte-level BPE, offline: whisper's `gpt2.tiktoken` converted to a transformers tokenizer.

No package on PyPI ships GPT-2's `vocab.json`/`merges.txt`, but the openai-whisper sdist carries
`gpt2.tiktoken`, byte-identical to tiktoken's `r50k_base` (the GPT-2 vocabulary: 50,257 tokens, `<|endoftext|>` =
50256). It is fetched at install time (`python -m adamix_runner.tokenizer_assets`, which prints the folder),
checked by sha256, converted with transformers' TikTokenConverter and saved as a GPT2TokenizerFast under
`$ADAMIX_CACHE_DIR/gpt2-tokenizer` (default `~/.cache/adamix-runner/gpt2-tokenizer`). Every GPT-2 size uses this
one vocabulary, so the GPT-2 configs need no hub for their tokenizer.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from adamix_runner.errors import UserError

PACKAGE = "openai-whisper==20250625"
SDIST = "openai_whisper-20250625.tar.gz"
MEMBER = "openai_whisper-20250625/whisper/assets/gpt2.tiktoken"
SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# tiktoken's r50k_base split pattern (tiktoken_ext/openai_public.py), i.e. GPT-2's pre-tokenizer regex
R50K_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOS = "<|endoftext|>"
FOLDER = "gpt2-tokenizer"
PIP_DOWNLOAD = ["pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE]
MANUAL = (
    f"fetch it by hand: {' '.join(PIP_DOWNLOAD)} -d /tmp/wh && tar xzf /tmp/wh/{SDIST} -C /tmp/wh {MEMBER}; "
    f"then pass model.tokenizer=/path/to/a/gpt2/tokenizer (a folder with tokenizer.json)"
)


def cache_root() -> Path:
    return Path(os.environ.get("ADAMIX_CACHE_DIR") or Path.home() / ".cache" / "adamix-runner")


def _fetch_tiktoken_file() -> bytes:
    """gpt2.tiktoken from the whisper sdist on PyPI (source only: its wheel would pull torch, triton, numba)."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", *PIP_DOWNLOAD, "-q", "-d", tmp], check=True, capture_output=True, text=True
            )
            with tarfile.open(Path(tmp) / SDIST) as sdist:
                data = sdist.extractfile(MEMBER).read()
    except subprocess.CalledProcessError as err:
        raise UserError(f"could not download {PACKAGE} from PyPI ({err.stderr.strip()}); {MANUAL}") from err
    except (OSError, KeyError, tarfile.TarError) as err:
        raise UserError(f"could not extract gpt2.tiktoken from {PACKAGE}: {err}; {MANUAL}") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise UserError(f"gpt2.tiktoken from {PACKAGE} has sha256 {digest}, expected {SHA256}; {MANUAL}")
    return data


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
        raw.write_bytes(_fetch_tiktoken_file())
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
