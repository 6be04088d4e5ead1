"""Hub reachability, so that an offline run fails in seconds with what to pass instead.

Without a network, `datasets` and `transformers` retry for tens of seconds before they give up; a TCP probe
answers in milliseconds. When the probe fails, `offline_mode()` makes the libraries use their local caches
only, which is what `HF_HUB_OFFLINE=1` would have done had it been set before they were imported.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from adamix_runner.errors import OfflineError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
_DEFAULT_ENDPOINT = "https://huggingface.co"


def offline_requested() -> bool:
    """True when one of the libraries' offline variables is set to a true value."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in OFFLINE_VARIABLES)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's host (HF_ENDPOINT) opens within `timeout` seconds."""
    if offline_requested():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT)
    if endpoint.hostname is None:
        return False
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(what: str, alternative: str) -> None:
    """Raise OfflineError, naming the local alternative, when the hub cannot be reached."""
    if not hub_reachable():
        raise OfflineError(
            f"{what} needs the Hugging Face hub, which is unreachable (offline mode is set or there is no "
            f"network); pass {alternative} instead."
        )


def load_hub_dataset(hub_id: str, subset: str | None, offline_message: str):
    """`datasets.load_dataset(hub_id, subset)`, from the local cache alone when the hub is unreachable; a cache
    miss then raises OfflineError with `offline_message` (what to pass instead)."""
    import datasets

    reachable = hub_reachable()
    try:
        if reachable:
            return datasets.load_dataset(hub_id, subset)
        with offline_mode():
            return datasets.load_dataset(hub_id, subset)
    except Exception as err:
        if reachable:
            raise
        raise OfflineError(offline_message) from err


@contextmanager
def offline_mode() -> Iterator[None]:
    """Within the block, `datasets` and `huggingface_hub` read their local caches and never touch the network.

    Both libraries read HF_HUB_OFFLINE once, at import; their module-level flags are what they consult at
    call time, so those are the flags set here (and restored on exit).
    """
    import datasets.config
    import huggingface_hub.constants

    flags = [(datasets.config, "HF_HUB_OFFLINE"), (huggingface_hub.constants, "HF_HUB_OFFLINE")]
    saved = [getattr(module, name) for module, name in flags]
    for module, name in flags:
        setattr(module, name, True)
    try:
        yield
    finally:
        for (module, name), value in zip(flags, saved, strict=True):
            setattr(module, name, value)
