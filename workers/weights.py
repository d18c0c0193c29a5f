"""Where Detoxify's weights come from: checks that fail fast, with a reason and a fix,
before Detoxify would hang on an unreachable network or fail deep inside a load."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import getproxies


class ScorerUnavailable(Exception):
    """A configured scorer cannot be loaded; the message says why and how to fix it."""


PROBE_TIMEOUT_S = 3.0
OFFLINE_FIX = (
    "To fix: on a machine with internet run "
    "`python -c \"from detoxify import Detoxify; Detoxify('{model}')\"`, copy ~/.cache/torch/hub "
    "and ~/.cache/huggingface to this host and set HF_HUB_OFFLINE=1; or set "
    "CIVILITY_SCORER=detoxify:/path/to/checkpoint.ckpt and "
    "CIVILITY_MODEL_CONFIG_DIR=/path/to/hf-config-dir."
)


def require_named_model_reachable(model: str) -> None:
    """Fail fast where Detoxify would need the network and cannot get it.

    torch.hub downloads with no timeout (a filtered network hangs on connect) and
    huggingface_hub retries each file for about 25 s, so a few seconds' TCP probe
    of the hosts decides instead.
    """
    import torch
    from detoxify.detoxify import MODEL_URLS

    url = MODEL_URLS[model]
    cached = Path(torch.hub.get_dir(), "checkpoints", os.path.basename(urlsplit(url).path))
    fix = OFFLINE_FIX.format(model=model)
    if not cached.is_file() and not _reachable(url):
        raise ScorerUnavailable(
            f"detoxify:{model}: weights are not cached at {cached} and "
            f"{urlsplit(url).hostname} is unreachable. {fix}"
        )
    why = f"detoxify:{model}: Detoxify fetches its tokenizer and config from the Hugging Face Hub"
    _require_hub_reachable(why, fix)


def _require_hub_reachable(why: str, fix: str) -> None:
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE and not _reachable(constants.ENDPOINT):
        raise ScorerUnavailable(
            f"{why}, but {constants.ENDPOINT} is unreachable (set HF_HUB_OFFLINE=1 if the "
            f"files are in the Hugging Face cache). {fix}"
        )


def check_checkpoint(path: Path, config_dir: str | Path | None) -> None:
    """Check a checkpoint and config dir as Detoxify will use them, to fail with a clear reason."""
    import torch

    fix = OFFLINE_FIX.format(model="original")
    if not path.is_file():
        raise ScorerUnavailable(f"detoxify: checkpoint {path} does not exist. {fix}")
    if config_dir is not None and not Path(config_dir, "config.json").is_file():
        raise ScorerUnavailable(
            f"detoxify: config dir {config_dir} has no config.json (CIVILITY_MODEL_CONFIG_DIR "
            "must hold the model's Hugging Face config.json and tokenizer files)."
        )
    try:
        try:  # mmap reads the config without reading the weights
            loaded = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        arch = loaded["config"]["arch"]["args"]
        classes = loaded["config"]["dataset"]["args"]["classes"]
        if "state_dict" not in loaded:
            raise KeyError("state_dict")
    except Exception as exc:
        raise ScorerUnavailable(
            f"detoxify: {path} is not a readable Detoxify checkpoint ({{'config': {{'arch': …, "
            f"'dataset': …}}, 'state_dict': …}}): {type(exc).__name__}: {exc}"
        ) from exc
    # Detoxify resolves arch.args.model_type with from_pretrained even when given a config dir.
    if not Path(arch["model_type"]).is_dir():
        why = (
            f"detoxify: {path} names model_type {arch['model_type']!r}, which Detoxify resolves on "
            "the Hugging Face Hub even with a config dir (write the config dir's path there to "
            "load offline)"
        )
        _require_hub_reachable(why, fix)
    if config_dir is not None:
        # Detoxify passes the dir as the model config: its label count must match the checkpoint.
        config = json.loads(Path(config_dir, "config.json").read_text())
        declared = len(config.get("id2label") or {}) or config.get("num_labels", 2)
        if declared != len(classes):
            raise ScorerUnavailable(
                f"detoxify: {config_dir}/config.json declares {declared} labels but {path} has "
                f'{len(classes)} classes; add "num_labels": {len(classes)} (or a matching '
                "id2label) to it."
            )


def _reachable(url: str) -> bool:
    """Whether a TCP connection to the URL's host (or its configured proxy) opens quickly."""
    parts = urlsplit(getproxies().get(urlsplit(url).scheme) or url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
