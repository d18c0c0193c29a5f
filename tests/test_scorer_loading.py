"""Loading a scorer: unloadable checkpoints and offline hosts fall back to the cheap scorer with
one logged reason; a fallback of none raises; an unknown spec is refused."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch

from workers.scorers import (
    ProfanityCheckScorer,
    ScorerUnavailable,
    load_scorer,
)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An air-gapped host: an empty torch hub cache, and a proxy that refuses connections."""
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def unloadable_checkpoint(kind: str, directory: Path, tiny: tuple[Path, Path]) -> tuple[Path, Path]:
    """A checkpoint and config dir that Detoxify cannot load, in one of several ways."""
    checkpoint, config_dir = tiny
    if kind == "missing file":
        return directory / "missing.ckpt", config_dir
    if kind == "corrupt file":
        corrupt = directory / "corrupt.ckpt"
        corrupt.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
        return corrupt, config_dir
    if kind == "missing config dir":
        return checkpoint, directory / "no-such-config"
    # A config dir with the stock BERT config.json: 2 labels, not the checkpoint's 6.
    two_labels = directory / "two-labels"
    shutil.copytree(config_dir, two_labels)
    config = json.loads((two_labels / "config.json").read_text())
    del config["id2label"], config["label2id"]
    (two_labels / "config.json").write_text(json.dumps(config))
    return checkpoint, two_labels


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing file", "does not exist"),
        ("corrupt file", "not a readable Detoxify checkpoint"),
        ("missing config dir", "has no config.json"),
        ("label count mismatch", "declares 2 labels"),
    ],
)
def test_unloadable_checkpoint_falls_back_with_one_logged_error(
    kind: str,
    reason: str,
    tmp_path: Path,
    tiny_checkpoint: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    checkpoint, config_dir = unloadable_checkpoint(kind, tmp_path, tiny_checkpoint)

    with caplog.at_level(logging.INFO, logger="workers.scorers"):
        scorer = load_scorer(f"detoxify:{checkpoint}", config_dir=config_dir)

    assert isinstance(scorer, ProfanityCheckScorer)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert reason in errors[0].getMessage()
    assert "falling back to profanity-check" in errors[0].getMessage()


@pytest.mark.usefixtures("offline")
def test_named_model_offline_falls_back_fast(caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="workers.scorers"):
        scorer = load_scorer("detoxify:original")

    assert isinstance(scorer, ProfanityCheckScorer)
    assert time.monotonic() - started < 10
    assert "github.com is unreachable" in caplog.text
    assert "Detoxify('original')" in caplog.text


@pytest.mark.usefixtures("offline")
def test_checkpoint_naming_a_hub_model_falls_back_fast_offline(
    tmp_path: Path, tiny_checkpoint: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        pytest.skip("HF_HUB_OFFLINE is set: the Hub is never asked")
    checkpoint, config_dir = tiny_checkpoint
    loaded = torch.load(checkpoint, weights_only=False)
    loaded["config"]["arch"]["args"]["model_type"] = "bert-base-uncased"  # as released
    hub_named = tmp_path / "hub-named.ckpt"
    torch.save(loaded, hub_named)

    with caplog.at_level(logging.ERROR, logger="workers.scorers"):
        scorer = load_scorer(f"detoxify:{hub_named}", config_dir=config_dir)

    assert isinstance(scorer, ProfanityCheckScorer)
    assert "'bert-base-uncased', which Detoxify resolves on the Hugging Face Hub" in caplog.text


def test_fallback_none_raises_scorer_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ScorerUnavailable, match="does not exist"):
        load_scorer(f"detoxify:{tmp_path / 'missing.ckpt'}", "none")


@pytest.mark.parametrize(
    ("spec", "fallback"),
    [
        ("detoxify:orignal", "profanity-check"),
        ("detoxify", "profanity-check"),
        ("perspective", "profanity-check"),
        ("none", "profanity-check"),
        ("profanity-check", "detoxify:nope"),
    ],
)
def test_unknown_spec_raises_value_error(spec: str, fallback: str) -> None:
    with pytest.raises(ValueError, match="unknown scorer"):
        load_scorer(spec, fallback)
