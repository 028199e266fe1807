"""Whether bf16 mixed precision is fast on this machine (`CifarTrainingArguments.auto_bf16`)."""

from __future__ import annotations

import torch


def fast_bf16(cpu: bool | None = None) -> bool:
    """True where bf16 autocast speeds training up: on a CUDA GPU that supports bf16, or (training on the CPU) a CPU
    with bf16 matrix instructions — Intel AMX tiles or AVX512-BF16, which oneDNN uses for bf16 convolutions. On other
    CPUs bf16 is emulated and slower than fp32, so the answer is False.

    Args:
        cpu: whether training runs on the CPU (default: when no CUDA device is available).
    """
    if cpu is None:
        cpu = not torch.cuda.is_available()
    if not cpu:
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    checks = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(bool(check()) for check in checks if check is not None)
