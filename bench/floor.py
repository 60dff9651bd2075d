"""The memory-bandwidth floor of autoregressive decoding, and the device's bandwidth.

One decoding step of a transformer LM at batch 2 (classifier-free guidance) reads every weight of
its layers and output heads once and does little arithmetic per byte, so no step can be faster
than ``weight bytes read per step / memory bandwidth``. The ratio of the measured step time to
that floor says how much a faster implementation could still gain ("2.9x above the floor").
The floor leaves out the KV cache (read too, growing with the position in the window) and the
embedding rows (a few KB), so even a perfect implementation stays somewhat above 1x.

Bandwidths: the vendors' datasheet figures for known GPUs, looked up by the name torch reports
(A100's 40 and 80 GB models by their memory size); on the CPU, measured with a numpy copy
(bytes read + bytes written per second, the median of a few copies of a buffer far larger than
any cache). An unknown GPU has no floor unless ``--bandwidth`` gives one.
"""
from __future__ import annotations

import statistics
import time
import typing as tp
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# (substring of torch.cuda.get_device_name(), minimum memory in GiB or 0, label, GB/s).
# More specific entries first: the first match wins.
GPU_BANDWIDTHS: tuple[tuple[str, float, str, float], ...] = (
    ("H200", 0, "H200", 4800.0),
    ("H100 NVL", 0, "H100 NVL", 3900.0),
    ("H100 PCIe", 0, "H100 PCIe", 2000.0),
    ("H100", 0, "H100 SXM", 3350.0),
    ("A100 80GB PCIe", 0, "A100 80GB PCIe", 1935.0),
    ("A100", 60, "A100 80GB SXM", 2039.0),
    ("A100", 0, "A100 40GB", 1555.0),
    ("L40S", 0, "L40S", 864.0),
    ("A10G", 0, "A10G", 600.0),
    ("T4", 0, "T4", 320.0),
)
_COPY_BYTES = 256 * 2 ** 20
_COPY_RUNS = 5


@dataclass(frozen=True)
class Bandwidth:
    """A device's memory bandwidth (None: unknown) and where the figure comes from."""

    gb_per_s: tp.Optional[float]
    source: str


def gpu_bandwidth(name: str, memory_gib: float) -> Bandwidth:
    """The datasheet bandwidth of the GPU called ``name`` (as torch reports it), if known."""
    for pattern, min_gib, label, gb_per_s in GPU_BANDWIDTHS:
        if pattern in name and memory_gib >= min_gib:
            return Bandwidth(gb_per_s, f"{label} datasheet")
    known = ", ".join(dict.fromkeys(label for _, _, label, _ in GPU_BANDWIDTHS))
    return Bandwidth(None, f"unknown GPU {name!r} (known: {known}; give --bandwidth GB/s)")


def cpu_bandwidth(nbytes: int = _COPY_BYTES, runs: int = _COPY_RUNS) -> Bandwidth:
    """Measure the CPU's memory bandwidth: median (read + write) rate of ``np.copyto``."""
    source = np.ones(nbytes // 8, dtype=np.float64)
    target = np.empty_like(source)
    np.copyto(target, source)  # fault the pages in before timing
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        np.copyto(target, source)
        seconds.append(time.perf_counter() - start)
    rate = 2 * source.nbytes / statistics.median(seconds) / 1e9
    return Bandwidth(rate, f"measured: numpy copy of {nbytes / 2 ** 20:.0f} MiB, read + write")


def cuda_bandwidth(device: torch.device, nbytes: int = 2 ** 30, runs: int = _COPY_RUNS) -> Bandwidth:
    """Measure a GPU's memory bandwidth: median (read + write) rate of a device-to-device copy."""
    source = torch.ones(nbytes // 2, dtype=torch.float16, device=device)
    target = torch.empty_like(source)
    target.copy_(source)  # warm-up
    seconds = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        target.copy_(source)
        end.record()
        end.synchronize()
        seconds.append(start.elapsed_time(end) / 1e3)
    rate = 2 * nbytes / statistics.median(seconds) / 1e9
    del source, target
    return Bandwidth(rate, f"measured: device copy of {nbytes / 2 ** 30:.0f} GiB, read + write")


def device_bandwidth(device: torch.device, override: tp.Optional[float] = None) -> Bandwidth:
    """``override`` if given, else the GPU's datasheet figure or the CPU's measured one."""
    if override is not None:
        return Bandwidth(override, "given with --bandwidth")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return gpu_bandwidth(props.name, props.total_memory / 2 ** 30)
    if device.type == "cpu":
        return cpu_bandwidth()
    return Bandwidth(None, f"unknown device type {device.type!r}")


def step_weight_bytes(lm: nn.Module) -> int:
    """Bytes of weights one decoding step reads: the transformer, the output norm and heads.

    Counted from the tensors as built (their dtypes: on a GPU audiocraft keeps the heads in
    float32 beside a float16 transformer). The embeddings are left out: a step gathers K rows.
    """
    parts = [lm.transformer, lm.linears] + ([lm.out_norm] if lm.out_norm is not None else [])
    return sum(p.numel() * p.element_size() for part in parts for p in part.parameters())


def floor_seconds(weight_bytes: int, bandwidth: Bandwidth) -> tp.Optional[float]:
    """The fastest possible step (None when the bandwidth is unknown)."""
    if bandwidth.gb_per_s is None:
        return None
    return weight_bytes / (bandwidth.gb_per_s * 1e9)
