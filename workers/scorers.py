"""Toxicity scorers: one interface over Detoxify and alt-profanity-check."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

logger = logging.getLogger(__name__)

# One tokenized text: its model inputs and whether it was cut at max_tokens.
Encoded = tuple[dict[str, list[int]], bool]

DETOXIFY_MODELS = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
PROBE_TIMEOUT_S = 3.0
OFFLINE_FIX = (
    "To fix: on a machine with internet run "
    "`python -c \"from detoxify import Detoxify; Detoxify('{model}')\"`, copy ~/.cache/torch/hub "
    "and ~/.cache/huggingface to this host and set HF_HUB_OFFLINE=1; or set "
    "CIVILITY_SCORER=detoxify:/path/to/checkpoint.ckpt and "
    "CIVILITY_MODEL_CONFIG_DIR=/path/to/hf-config-dir."
)


class ScorerUnavailable(Exception):
    """A configured scorer cannot be loaded; the message says why and how to fix it."""


class ScoringError(Exception):
    """A text could not be scored (`score` raises it; `score_detailed` reports it per text)."""


@dataclass(frozen=True)
class Scored:
    """The outcome for one text: scores per label, or the error that prevented them."""

    scores: dict[str, float] | None
    truncated: bool = False
    error: str | None = None


class Scorer(ABC):
    """A loaded model that scores texts on `labels`, each score in [0, 1]."""

    name: str
    version: str
    labels: tuple[str, ...]

    @property
    def model(self) -> str:
        """The identifier stored with every score, e.g. `detoxify-original@0.5.4`."""
        return f"{self.name}@{self.version}"

    @abstractmethod
    def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
        """Score texts in input order; a text that fails gets `error` and no scores."""

    def plan(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of ``texts`` grouped into the passes that score them best, in the order
        to score them; every index appears once. Here: one pass for all."""
        return [list(range(len(texts)))] if texts else []

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Score texts in input order; raise ScoringError if any text could not be scored."""
        results = self.score_detailed(texts)
        for index, scored in enumerate(results):
            if scored.scores is None:
                raise ScoringError(f"text {index}: {scored.error}")
        return [scored.scores for scored in results if scored.scores is not None]


class ProfanityCheckScorer(Scorer):
    """alt-profanity-check's linear model, shipped inside its package: works offline."""

    name = "profanity-check"
    labels = ("toxicity",)

    def __init__(self) -> None:
        try:
            from profanity_check import predict_prob
        except ImportError as exc:
            raise ScorerUnavailable(
                f"profanity-check: cannot import profanity_check ({exc}); "
                "install alt-profanity-check."
            ) from exc
        self._predict_prob = predict_prob
        self.version = package_version("alt-profanity-check")

    def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
        """Score all texts in one call; on failure, one by one so a bad text fails alone."""
        texts = _text_list(texts)
        if not texts:
            return []
        try:
            return [self._scored(p) for p in self._predict_prob(texts)]
        except Exception:
            pass
        results = []
        for text in texts:
            try:
                results.append(self._scored(self._predict_prob([text])[0]))
            except Exception as exc:
                results.append(Scored(None, error=f"{type(exc).__name__}: {exc}"))
        return results

    def _scored(self, probability: Any) -> Scored:
        return Scored({"toxicity": float(probability)})


class DetoxifyScorer(Scorer):
    """A Detoxify model, named (`original`, …) or a local checkpoint with its HF config dir."""

    def __init__(
        self,
        source: str,
        *,
        config_dir: str | Path | None = None,
        device: str = "cpu",
        threads: int = 0,
        max_batch: int = 32,
        max_tokens: int = 256,
        quantize: str = "none",
    ) -> None:
        if quantize not in QUANTIZE_MODES:
            raise ValueError(
                f"detoxify: quantize must be one of {QUANTIZE_MODES}, not {quantize!r}"
            )
        if max_batch < 1 or max_tokens < 4:
            raise ValueError(
                f"detoxify: need max_batch >= 1 and max_tokens >= 4, not {max_batch}, {max_tokens}"
            )
        try:
            import torch
            from detoxify import Detoxify
        except ImportError as exc:
            raise ScorerUnavailable(
                f"detoxify: cannot import ({exc}); install detoxify and torch."
            ) from exc

        try:
            device_type = torch.device(device).type
        except RuntimeError as exc:
            raise ValueError(f"detoxify: invalid device {device!r}: {exc}") from exc
        if device_type == "cuda" and not torch.cuda.is_available():
            raise ScorerUnavailable(
                f"detoxify: device {device!r} requested but torch sees no CUDA device."
            )
        if threads > 0:
            torch.set_num_threads(threads)

        if source in DETOXIFY_MODELS:
            _require_named_model_reachable(source)
            self.name = f"detoxify-{source}"
            self.version = package_version("detoxify")
            load = {"model_type": source}
        else:
            path = Path(source)
            _check_checkpoint(path, config_dir)
            self.name = f"detoxify-{path.stem}"
            self.version = _sha256(path)[:12]
            load = {"checkpoint": str(path), "huggingface_config_path": _str_or_none(config_dir)}
        try:
            detoxify = Detoxify(device=device, **load)
        except Exception as exc:
            raise ScorerUnavailable(
                f"detoxify: cannot load {source!r}: {type(exc).__name__}: {exc}. "
                + OFFLINE_FIX.format(model=source if source in DETOXIFY_MODELS else "original")
            ) from exc

        self.labels = tuple(detoxify.class_names)
        self.device = device
        self.max_batch = max_batch
        self.pass_overhead_tokens = PASS_OVERHEAD_TOKENS["cuda" if device_type == "cuda" else "cpu"]
        self._model = detoxify.model.eval()
        self._tokenizer = detoxify.tokenizer
        limit = min(self._tokenizer.model_max_length, self._model.config.max_position_embeddings)
        if max_tokens > limit:
            logger.warning(
                "scorer %s: max_tokens %d exceeds the model's %d; using %d",
                self.name,
                max_tokens,
                limit,
                limit,
            )
        self.max_tokens = min(max_tokens, limit)
        if quantize == "int8":
            if device_type != "cpu":
                raise ValueError("detoxify: int8 quantization runs on the CPU only")
            self._model = quantize_int8(self._model)
            self.pass_overhead_tokens = PASS_OVERHEAD_TOKENS["cpu-int8"]
            # Quantized scores differ slightly: comments must say which model scored them.
            self.version += "+int8"

    def plan(self, texts: Sequence[str]) -> list[list[int]]:
        """The forward passes ``score_detailed`` would make for ``texts``, shortest first;
        texts the tokenizer rejects come first, in a group of their own (no pass)."""
        encoded = self._encode(_text_list(texts))
        rejected = [index for index, item in enumerate(encoded) if not isinstance(item, tuple)]
        return ([rejected] if rejected else []) + self._passes(encoded)

    def _passes(self, encoded: Sequence[Encoded | str]) -> list[list[int]]:
        """Tokenized texts in length order, cut into chunks of at most max_batch."""
        ready = [index for index, item in enumerate(encoded) if isinstance(item, tuple)]
        # Sorting by token count keeps the padding in each chunk small.
        ready.sort(key=lambda index: len(encoded[index][0]["input_ids"]))
        lengths = [len(encoded[index][0]["input_ids"]) for index in ready]
        chunks = plan_chunks(lengths, self.max_batch, self.pass_overhead_tokens)
        return [ready[start:end] for start, end in chunks]

    def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
        """Score in length-sorted chunks of max_batch, one forward pass each, in input order."""
        encoded = self._encode(_text_list(texts))
        results: list[Scored | None] = [
            None if isinstance(item, tuple) else Scored(None, error=item) for item in encoded
        ]
        for chunk in self._passes(encoded):
            outcomes = self._score_chunk([encoded[i][0] for i in chunk])
            for index, outcome in zip(chunk, outcomes, strict=True):
                truncated = encoded[index][1]
                if isinstance(outcome, str):
                    results[index] = Scored(None, truncated, outcome)
                else:
                    results[index] = Scored(dict(zip(self.labels, outcome, strict=True)), truncated)
        return [scored for scored in results if scored is not None]

    def _encode(self, texts: list[str]) -> Sequence[Encoded | str]:
        """Tokenize, cut at max_tokens; a text the tokenizer rejects gets its error instead."""
        try:
            return self._tokenize(texts)
        except Exception:
            pass
        encoded: list[Encoded | str] = []
        for text in texts:
            try:
                encoded.extend(self._tokenize([text]))
            except Exception as exc:
                encoded.append(f"{type(exc).__name__}: {exc}")
        return encoded

    def _tokenize(self, texts: list[str]) -> list[Encoded]:
        if not texts:
            return []
        batch = self._tokenizer(texts, truncation=True, max_length=self.max_tokens)
        rows: list[Encoded] = []
        for index in range(len(texts)):
            features = {key: batch[key][index] for key in batch}
            if batch.encodings:
                truncated = bool(batch.encodings[index].overflowing)
            else:  # a non-`tokenizers` backend does not report overflow
                truncated = len(self._tokenizer(texts[index])["input_ids"]) > self.max_tokens
            rows.append((features, truncated))
        return rows

    def _score_chunk(self, features: list[dict[str, list[int]]]) -> list[list[float] | str]:
        """Probabilities per text; if the chunk fails, retry its texts one by one."""
        try:
            return list(self._forward(features))
        except Exception as exc:
            if len(features) == 1:
                return [f"{type(exc).__name__}: {exc}"]
            logger.warning(
                "scorer %s: batch of %d failed (%s); scoring one by one",
                self.name,
                len(features),
                exc,
            )
        return [self._score_chunk([one])[0] for one in features]

    def _forward(self, features: list[dict[str, list[int]]]) -> list[list[float]]:
        """One padded forward pass; sigmoid over logits as `Detoxify.predict` does."""
        import torch

        inputs = self._tokenizer.pad(features, return_tensors="pt").to(self._model.device)
        with torch.inference_mode():
            logits = self._model(**inputs)[0]
        return torch.sigmoid(logits).float().cpu().tolist()


QUANTIZE_MODES = ("none", "int8")


def quantize_int8(model: Any) -> Any:
    """The model with its Linear layers dynamically quantized to int8 (CPU only).

    Weights are scaled per output channel, which moves a trained encoder's outputs about
    half as much as one scale per tensor at the same speed (bench/quantization.py).
    Two to four times faster for BERT-base on a CPU with AVX-512 VNNI, but the scores
    move (see the README). torch marks this eager-mode API deprecated in favour of
    torchao, which it still ships.
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


# A forward pass costs about as much as this many extra tokens, whatever its size.
# BERT-base on a 2-core CPU: fp32 ~0.85 ms a token plus ~55 ms a pass, int8 ~0.4 ms a
# token plus ~16 ms a pass (bench/scoring.py). On a GPU a pass's launch cost dominates
# and padding is nearly free, so chunks simply fill up to max_batch.
PASS_OVERHEAD_TOKENS = {"cpu": 64, "cpu-int8": 40, "cuda": 4096}


def plan_chunks(
    lengths: Sequence[int], max_batch: int, pass_overhead_tokens: int = PASS_OVERHEAD_TOKENS["cpu"]
) -> list[tuple[int, int]]:
    """Split ascending token counts into chunks (start, end) of at most ``max_batch``,
    minimising padded tokens plus a fixed cost per forward pass.

    Padding every text to the longest of a random batch can cost more than scoring
    one by one; cutting the sorted run where lengths jump avoids that. Dynamic
    programming over contiguous chunks: O(len(lengths) * max_batch).
    """
    count = len(lengths)
    best = [0.0] + [math.inf] * count
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        for start in range(max(0, end - max_batch), end):
            cost = best[start] + (end - start) * lengths[end - 1] + pass_overhead_tokens
            if cost < best[end]:
                best[end], cut[end] = cost, start
    chunks = []
    end = count
    while end > 0:
        chunks.append((cut[end], end))
        end = cut[end]
    return chunks[::-1]


def load_scorer(
    spec: str,
    fallback: str = "profanity-check",
    *,
    config_dir: str | Path | None = None,
    device: str = "cpu",
    threads: int = 0,
    max_batch: int = 32,
    max_tokens: int = 256,
    quantize: str = "none",
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> Scorer:
    """Build the scorer for `spec`; if it cannot load, log why and use `fallback` (none: raise)."""
    log = log or logger
    _parse(spec)
    if fallback != "none":
        _parse(fallback)
    options = {
        "config_dir": config_dir,
        "device": device,
        "threads": threads,
        "max_batch": max_batch,
        "max_tokens": max_tokens,
        "quantize": quantize,
    }
    try:
        return _build(spec, **options)
    except ScorerUnavailable as exc:
        if fallback in ("none", spec):
            raise
        log.error("scorer %s unavailable, falling back to %s: %s", spec, fallback, exc)
        return _build(fallback, **options)


def _parse(spec: str) -> tuple[str, str | None]:
    """Split a spec into backend and argument; ValueError if it names nothing we know."""
    if spec == "profanity-check":
        return "profanity-check", None
    backend, _, source = spec.partition(":")
    if backend == "detoxify" and (
        source in DETOXIFY_MODELS
        or "/" in source
        or os.sep in source
        or source.endswith(CHECKPOINT_SUFFIXES)
    ):
        return "detoxify", source
    names = "|".join(DETOXIFY_MODELS)
    raise ValueError(
        f"unknown scorer {spec!r}: use 'profanity-check', 'detoxify:<{names}>' or "
        "'detoxify:/path/to/checkpoint.ckpt' (a fallback may also be 'none')"
    )


def _build(spec: str, **options: Any) -> Scorer:
    backend, source = _parse(spec)
    if backend == "profanity-check":
        return ProfanityCheckScorer()
    assert source is not None
    return DetoxifyScorer(source, **options)


def _require_named_model_reachable(model: str) -> None:
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


def _check_checkpoint(path: Path, config_dir: str | Path | None) -> None:
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


def _text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):  # a lone string would be scored character by character
        raise TypeError("score a list of texts, not a str")
    return list(texts)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _str_or_none(value: str | Path | None) -> str | None:
    return None if value is None else str(value)
