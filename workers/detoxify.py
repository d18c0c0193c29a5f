"""The Detoxify scorer: a named model or a local checkpoint, long texts read in
overlapping windows, and the chunk planner that batches them by length."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from workers.scorers import (
    DETOXIFY_MODELS,
    Between,
    ModelOptions,
    Scored,
    Scorer,
    _text_list,
)
from workers.weights import (
    OFFLINE_FIX,
    ScorerUnavailable,
    check_checkpoint,
    require_named_model_reachable,
    sha256_of,
)

logger = logging.getLogger(__name__)

# One tokenized text: the model inputs of its windows (one unless the text is longer than
# max_tokens) and whether windows past max_windows were left unread.
Encoded = tuple[list[dict[str, list[int]]], bool]


class DetoxifyScorer(Scorer):
    """A Detoxify model, named (`original`, …) or a local checkpoint with its HF config dir."""

    def __init__(self, source: str, options: ModelOptions | None = None, **fields: Any) -> None:
        """``fields`` change single ModelOptions fields of ``options`` (the defaults when None)."""
        options = replace(options or ModelOptions(), **fields)
        device, max_batch, max_tokens = options.device, options.max_batch, options.max_tokens
        if max_batch < 1 or max_tokens < 4 or options.max_windows < 1:
            raise ValueError(
                f"detoxify: need max_batch >= 1 and max_tokens >= 4, not {max_batch}, {max_tokens}"
            )
        try:
            import torch
            from detoxify import Detoxify

            from workers import precision as precisions
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
        self.precision = precisions.resolve_precision(options.precision, device_type)
        if options.threads > 0:
            torch.set_num_threads(options.threads)

        if source in DETOXIFY_MODELS:
            require_named_model_reachable(source)
            self.name = f"detoxify-{source}"
            self.version = package_version("detoxify")
            load = {"model_type": source}
        else:
            path = Path(source)
            check_checkpoint(path, options.config_dir)
            self.name = f"detoxify-{path.stem}"
            self.version = sha256_of(path)[:12]
            load = {
                "checkpoint": str(path),
                "huggingface_config_path": _str_or_none(options.config_dir),
            }
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
        self.pass_overhead_tokens = PASS_OVERHEAD_TOKENS[
            "cuda" if device_type == "cuda" else f"cpu-{self.precision}"
        ]
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
        # Windows must advance: at most half a window is shared with the next.
        self.window_overlap = max(0, min(options.window_overlap, (self.max_tokens - 2) // 2))
        self.max_windows = options.max_windows
        self.pass_budget_s = options.pass_budget_s
        self.yield_every_s = options.yield_every_s
        self.seconds_per_token: float | None = None  # measured, for planning by time budget
        self._letting_in = False  # inside a call between layers (see _between_layers)
        self._paused_s = 0.0  # spent in calls between layers, not the passes' own
        self._model = precisions.reduce_precision(self._model, self.precision)
        self._device_type = device_type
        if self.precision != "fp32":
            # Such scores differ slightly: comments must say which model scored them.
            self.version += f"+{self.precision}"

    def plan(self, texts: Sequence[str]) -> list[list[int]]:
        """The forward passes ``score_detailed`` would make for ``texts``, shortest first;
        texts the tokenizer rejects come first, in a group of their own (no pass)."""
        encoded = self._encode(_text_list(texts))
        rejected = [index for index, item in enumerate(encoded) if not isinstance(item, tuple)]
        return ([rejected] if rejected else []) + self._passes(encoded)

    def _passes(self, encoded: Sequence[Encoded | str]) -> list[list[int]]:
        """Tokenized texts in length order, cut into chunks of at most max_batch windows (and,
        once the speed is measured, of at most pass_budget_s)."""
        ready = [index for index, item in enumerate(encoded) if isinstance(item, tuple)]
        # Sorting by token count keeps the padding in each chunk small; a text's first
        # window is its longest.
        ready.sort(key=lambda index: len(encoded[index][0][0]["input_ids"]))
        lengths = [len(encoded[index][0][0]["input_ids"]) for index in ready]
        rows = [len(encoded[index][0]) for index in ready]
        chunks = plan_chunks(
            lengths, self.max_batch, self.pass_overhead_tokens, rows=rows, max_cost=self._budget()
        )
        return [ready[start:end] for start, end in chunks]

    def _budget(self) -> float | None:
        """Padded tokens (plus the pass overhead) one pass may cost within pass_budget_s."""
        if self.pass_budget_s <= 0 or not self.seconds_per_token:
            return None
        return self.pass_budget_s / self.seconds_per_token

    def score_detailed(self, texts: Sequence[str], *, between: Between = None) -> list[Scored]:
        """Score in length-sorted chunks of max_batch, one forward pass each, in input order;
        a text too long for one pass within the budget is read in several."""
        encoded = self._encode(_text_list(texts))
        results: list[Scored | None] = [
            None if isinstance(item, tuple) else Scored(None, error=item) for item in encoded
        ]
        with self._between_layers(between):
            self._score_passes(encoded, results, between)
        return [scored for scored in results if scored is not None]

    def _score_passes(
        self, encoded: Sequence[Encoded | str], results: list[Scored | None], between: Between
    ) -> None:
        passes = 0
        for chunk in self._passes(encoded):
            # Every window of a text goes in its text's chunk; the text scores each label's
            # maximum over its windows (a toxic last paragraph counts as much as a first).
            owners = [index for index in chunk for _ in encoded[index][0]]
            windows = [window for index in chunk for window in encoded[index][0]]
            outcomes: list[list[float] | str] = []
            for part in self._slices(windows):
                if passes and between is not None:
                    between()
                outcomes += self._score_chunk(part)
                passes += 1
            by_text: dict[int, list[list[float] | str]] = {}
            for index, outcome in zip(owners, outcomes, strict=True):
                by_text.setdefault(index, []).append(outcome)
            for index, found in by_text.items():
                truncated = encoded[index][1]
                errors = [outcome for outcome in found if isinstance(outcome, str)]
                if errors:
                    results[index] = Scored(None, truncated, errors[0])
                    continue
                maxima = [max(column) for column in zip(*found, strict=True)]
                results[index] = Scored(dict(zip(self.labels, maxima, strict=True)), truncated)

    @contextmanager
    def _between_layers(self, between: Between) -> Iterator[None]:
        """Call ``between`` between the encoder's layers of every pass in the block too (at
        most every yield_every_s): a request then waits for one layer of a backlog pass,
        not for all of it. A pass inside ``between`` (the request's own, on this same
        model) runs its layers through without stopping; the time spent in there is not
        counted as the pass's own."""
        layers = encoder_layers(self._model)
        if between is None or self.yield_every_s <= 0 or len(layers) < 2:
            yield
            return
        last = time.perf_counter()

        def let_in(module: Any, args: Any) -> None:
            nonlocal last
            if self._letting_in or time.perf_counter() - last < self.yield_every_s:
                return
            self._letting_in = True
            started = time.perf_counter()
            try:
                between()
            except Exception:
                # Raised inside the forward pass it would fail the pass, and its texts would
                # be scored again one by one: the next call between passes meets it instead.
                logger.warning("scorer %s: call between layers failed", self.name, exc_info=True)
            finally:
                self._letting_in = False
                last = time.perf_counter()
                self._paused_s += last - started

        handles = [layer.register_forward_pre_hook(let_in) for layer in layers[1:]]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _slices(self, windows: list[dict[str, list[int]]]) -> list[list[dict[str, list[int]]]]:
        """A chunk's windows in forward passes: one, unless they cost more than the pass
        budget or max_batch rows (a long text alone in its chunk): then as many passes as keep
        each within both, so what waits for this worker waits for one bounded pass."""
        longest = max((len(window["input_ids"]) for window in windows), default=0)
        rows = self.max_batch
        budget = self._budget()
        if budget is not None and longest:
            rows = min(rows, max(1, int((budget - self.pass_overhead_tokens) // longest)))
        return [windows[start : start + rows] for start in range(0, len(windows), rows)]

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
        """Each text in windows of max_tokens overlapping by window_overlap (the tokenizer's
        own overflow with stride), at most max_windows of them."""
        if not texts:
            return []
        batch = self._tokenizer(
            texts,
            truncation=True,
            max_length=self.max_tokens,
            return_overflowing_tokens=True,
            stride=self.window_overlap,
        )
        owners = batch.pop("overflow_to_sample_mapping", None) or list(range(len(texts)))
        windows: list[list[dict[str, list[int]]]] = [[] for _ in texts]
        for row, owner in enumerate(owners):
            windows[owner].append({key: batch[key][row] for key in batch})
        return [(found[: self.max_windows], len(found) > self.max_windows) for found in windows]

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

        from workers.precision import forward_context

        started, paused = time.perf_counter(), self._paused_s
        inputs = self._tokenizer.pad(features, return_tensors="pt").to(self._model.device)
        with torch.inference_mode(), forward_context(self.precision, self._device_type):
            logits = self._model(**inputs)[0]
        probabilities = torch.sigmoid(logits.float()).cpu().tolist()
        cost = inputs["input_ids"].numel() + self.pass_overhead_tokens
        measured = (time.perf_counter() - started - (self._paused_s - paused)) / cost
        # A moving average: one slow pass (the machine was busy) does not halve the next plan.
        previous = self.seconds_per_token
        self.seconds_per_token = measured if previous is None else 0.8 * previous + 0.2 * measured
        return probabilities


# A forward pass costs about as much as this many extra tokens, whatever its size.
# BERT-base on a 2-core CPU: fp32 ~0.85 ms a token plus ~55 ms a pass, int8 ~0.4 ms a
# token plus ~16 ms a pass (an AVX-512 VNNI Xeon), bf16 ~0.37 ms a token plus ~32 ms a
# pass (an AMX Xeon). On a GPU a pass's launch cost dominates and padding is nearly
# free, so chunks simply fill up to max_batch.
PASS_OVERHEAD_TOKENS = {"cpu-fp32": 64, "cpu-int8": 40, "cpu-bf16": 80, "cuda": 4096}


def encoder_layers(model: Any) -> list[Any]:
    """The transformer layers of a Hugging Face encoder (BERT, RoBERTa, XLM-R), in order;
    none for a model of another shape (its passes are then not cut between layers)."""
    import torch

    encoder = getattr(getattr(model, "base_model", model), "encoder", None)
    layers = getattr(encoder, "layer", None)
    return list(layers) if isinstance(layers, torch.nn.ModuleList) else []


def plan_chunks(
    lengths: Sequence[int],
    max_batch: int,
    pass_overhead_tokens: int = PASS_OVERHEAD_TOKENS["cpu-fp32"],
    *,
    rows: Sequence[int] | None = None,
    max_cost: float | None = None,
) -> list[tuple[int, int]]:
    """Split ascending token counts into chunks (start, end) of at most ``max_batch`` rows,
    minimising padded tokens plus a fixed cost per forward pass.

    Padding every text to the longest of a random batch can cost more than scoring
    one by one; cutting the sorted run where lengths jump avoids that. Dynamic
    programming over contiguous chunks: O(len(lengths) * max_batch). ``rows`` counts
    each text's windows (default one each); ``max_cost`` bounds a chunk's padded tokens
    plus overhead (a time budget). A single text always makes a chunk, whatever it costs.
    """
    count = len(lengths)
    rows = rows or [1] * count
    best = [0.0] + [math.inf] * count
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        taken = 0
        for start in range(end - 1, -1, -1):
            taken += rows[start]
            padded = taken * lengths[end - 1] + pass_overhead_tokens
            if start < end - 1 and (
                taken > max_batch or (max_cost is not None and padded > max_cost)
            ):
                break
            cost = best[start] + padded
            if cost < best[end]:
                best[end], cut[end] = cost, start
    chunks = []
    end = count
    while end > 0:
        chunks.append((cut[end], end))
        end = cut[end]
    return chunks[::-1]


def _str_or_none(value: str | Path | None) -> str | None:
    return None if value is None else str(value)
