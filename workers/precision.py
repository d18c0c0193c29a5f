"""Numeric precision of the scoring model: fp32, bf16 or int8, and which one `auto` picks.

Imports torch: import it where a model is loaded, not at a process's start.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "int8")


def resolve_precision(requested: str, device_type: str) -> str:
    """The precision to run: ``requested``, or for ``auto`` bf16 on a CPU that multiplies
    bf16 in hardware (Intel AMX, or AVX512-BF16 on AMD Zen 4 and later and Intel Cooper
    Lake), else fp32.

    On such a CPU bf16 gives 2-3x the throughput and moves a trained encoder's
    probabilities by about a thousandth (bench/precision.py: 2.6x on a Zen 4 EPYC with
    AVX512-BF16, 2-3x with AMX); on other CPUs it would be emulated, slower than fp32.
    On a GPU fp32 was faster than bf16 for these short, ever-changing batch shapes (an
    H200: 917 against 312 comments/s, bench/scoring.py).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"detoxify: precision must be one of {PRECISIONS}, not {requested!r}")
    if requested == "int8" and device_type != "cpu":
        raise ValueError("detoxify: int8 precision runs on the CPU only")
    if requested == "bf16" and not native_bf16(device_type):
        logger.warning(
            "detoxify: bf16 requested but this %s has no bf16 matrix units; "
            "it will likely run slower than fp32",
            device_type,
        )
    if requested == "auto":
        return "bf16" if device_type == "cpu" and native_bf16("cpu") else "fp32"
    return requested


def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` multiplies bf16 matrices in hardware."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        # Private helpers, so guarded. AMX tiles come with AMX-BF16 on every such CPU;
        # AVX512-BF16's dot products are what oneDNN's bf16 GEMMs use without AMX.
        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def reduce_precision(model: Any, precision: str) -> Any:
    """The model prepared to run at ``precision`` (fp32: unchanged)."""
    if precision == "int8":
        return quantize_int8(model)
    if precision == "bf16":
        return cast_bf16(model)
    return model


def forward_context(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """What a forward pass runs inside: autocast for bf16, nothing otherwise."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def cast_bf16(model: Any) -> Any:
    """The model with its Linear weights stored in bf16, to run under ``forward_context``.

    Autocast would round the fp32 weights to bf16 on every pass; rounding them once gives
    the same results about a fifth faster. LayerNorm, softmax and the embeddings stay
    fp32, products accumulate in fp32, and the output layer (the last Linear: the
    classifier) runs in fp32 so the logits are not rounded to bf16's three digits.
    """
    linears = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    ]
    if not linears:
        return model
    *inner, (output_name, output) = linears
    for _, module in inner:
        module.to(torch.bfloat16)
    parent_name, _, attribute = output_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attribute, Fp32(output))
    return model


class Fp32(torch.nn.Module):
    """Runs a module in fp32 inside an autocast region."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            return self.inner(hidden.float())


def quantize_int8(model: Any) -> Any:
    """The model with its Linear layers dynamically quantized to int8 (CPU only).

    Weights are scaled per output channel, which moves a trained encoder's outputs about
    half as much as one scale per tensor at the same speed (bench/precision.py).
    Two to four times faster for BERT-base on a CPU with AVX-512 VNNI, but the scores
    move (see the README). torch marks this eager-mode API deprecated in favour of
    torchao, which it still ships.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
