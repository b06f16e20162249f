"""Mixed precision for local training: which precision runs, and the autocast region that applies it.

``"32"`` trains in float32 throughout (the reference; nothing is wrapped). ``"bf16-mixed"``
runs each step's forward pass and loss under :func:`torch.autocast` in bfloat16, as
Lightning's ``precision="bf16-mixed"``: gemms run in bfloat16 while master weights, the
gradients Adam sees, Adam's moments and aggregation stay float32. Models hand their
logits to the loss in float32, so BCE-with-logits stays stable, and DAGMM's mixture and
energy maths stay float64 (autocast never touches float64). bfloat16 keeps float32's
exponent range, so no loss scaling is needed.

``"auto"`` picks bf16-mixed only where the hardware computes bfloat16 natively (a CUDA
device that reports it; a CPU with AVX512-BF16 or AMX-BF16); elsewhere torch emulates it
and it is slower than float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("32", "bf16-mixed")  # what training runs in; "auto" resolves to one of these
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic
_warned: set[str] = set()  # device types already warned about emulated bfloat16 (once per process)


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports; empty where there is no such file."""
    try:
        with open(path) as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def native_bf16(device: torch.device | str, *, flags: Iterable[str] | None = None) -> tuple[bool, str]:
    """Whether ``device`` computes bfloat16 natively, and the evidence in a few words.

    ``flags`` stands in for the CPU's feature flags (tests simulate other CPUs with it).
    """
    kind = torch.device(device).type
    if kind == "cuda":
        ok = torch.cuda.is_bf16_supported(including_emulation=False)
        return ok, f"{torch.cuda.get_device_name(device)} {'has' if ok else 'lacks'} native bf16"
    if kind == "cpu":
        have = [f for f in CPU_BF16_FLAGS if f in frozenset(cpu_flags() if flags is None else flags)]
        return bool(have), f"cpu has {' and '.join(have)}" if have else f"cpu has neither {' nor '.join(CPU_BF16_FLAGS)}"
    return False, f"no bf16 detection for {kind} devices"


def resolve_precision(
    requested: str,
    device: torch.device | str,
    *,
    native: Callable[[torch.device | str], tuple[bool, str]] = native_bf16,
) -> tuple[str, str]:
    """The precision to train in for ``compute.precision=requested`` on ``device``, and a one-line reason.

    An explicit ``bf16-mixed`` on hardware without native bfloat16 runs as asked but
    warns once per process and device type, in one line, that it will be slow.
    ``native`` is the hardware probe (injectable, so tests can simulate other hardware).
    """
    if requested == "32":
        return "32", "32 (compute.precision=32)"
    ok, evidence = native(device)
    if requested == "auto":
        return ("bf16-mixed", f"bf16-mixed (auto: {evidence})") if ok else ("32", f"32 (auto: {evidence})")
    if requested != "bf16-mixed":
        raise ValueError(f"unknown precision {requested!r}; use 32, bf16-mixed or auto")
    kind = torch.device(device).type
    if not ok and kind not in _warned:
        _warned.add(kind)
        log.warning("compute.precision=bf16-mixed without native bfloat16 (%s): torch emulates it, expect it slower than 32", evidence)
    return "bf16-mixed", "bf16-mixed (compute.precision=bf16-mixed)"


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """The region a training step's forward pass and loss run in: autocast for bf16-mixed, nothing for 32."""
    if precision == "bf16-mixed":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compute_dtype(precision: str) -> torch.dtype | None:
    """The dtype gemms run in under ``precision`` (``None``: the weights' own)."""
    return torch.bfloat16 if precision == "bf16-mixed" else None
