"""What this machine can hold and how fast it computes, measured rather than assumed.

    python -m finetune.machine      # prints it

- `available_memory()`: what a new allocation can still get: the kernel's MemAvailable, or the
  cgroup's limit less its usage where that is smaller (a container), or the GPU's free memory.
- `faster_dtype()`: bfloat16 or float32 for inference, by timing a matrix product of a model's
  own shape in both. CPUs differ: on one with AVX-512 BF16 a bf16 forward pass ran 2.1x faster
  than float32, on this project's 2-core AMD EPYC (AVX2 only) 6x slower (facts.md, bench/label.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

GiB = 1 << 30


@dataclass(frozen=True)
class Machine:
    device: str  # "cpu" or "cuda"
    name: str  # the CPU's or GPU's name
    memory: int  # bytes a new allocation can still get (see available_memory)
    threads: int  # torch's intra-op threads (CPU)

    def describe(self) -> str:
        where = self.name if self.device == "cuda" else f"{self.name}, {self.threads} threads"
        return f"{self.device} ({where}), {self.memory / GiB:.1f} GB free"


def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, else v1), None without one."""
    try:
        rel = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                   if line.startswith("0::"))
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError, StopIteration):
        pass
    try:  # v1: the limit reads as a huge number when there is none
        base = Path("/sys/fs/cgroup/memory")
        limit = int((base / "memory.limit_in_bytes").read_text())
        if limit >= 1 << 60:
            return None
        return limit - int((base / "memory.usage_in_bytes").read_text())
    except (OSError, ValueError):
        return None


def available_memory(device: str = "cpu") -> int:
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free)
    candidates = [m for m in (_meminfo("MemAvailable"), _cgroup_room()) if m is not None]
    if not candidates:  # not Linux: the physical memory, as an upper bound
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return 8 * GiB
    return min(candidates)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


def this_machine() -> Machine:
    import torch

    if torch.cuda.is_available():
        return Machine("cuda", torch.cuda.get_device_name(), available_memory("cuda"), torch.get_num_threads())
    return Machine("cpu", _cpu_name(), available_memory("cpu"), torch.get_num_threads())


def static_machine() -> Machine:
    """this_machine() with the total memory, not what is free now: under torchrun every process
    must plan the same schedule, and what is free differs from one moment to the next."""
    import torch

    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        return Machine("cuda", torch.cuda.get_device_name(), int(total), torch.get_num_threads())
    return Machine("cpu", _cpu_name(), _meminfo("MemTotal") or available_memory(), torch.get_num_threads())


_FASTER: dict[tuple, object] = {}


def faster_dtype(hidden: int = 576, intermediate: int = 1536, tokens: int = 256, device: str = "cpu"):
    """torch.bfloat16 where a [tokens x hidden] @ [hidden x intermediate] product (a model's MLP
    projection) runs faster in it than in float32 here, else torch.float32. A few milliseconds,
    measured once per shape and process. On CUDA: bfloat16 where the GPU supports it."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    key = (hidden, intermediate, tokens)
    if key not in _FASTER:
        seconds = {}
        for dtype in (torch.float32, torch.bfloat16):
            a = torch.randn(tokens, hidden).to(dtype)
            b = torch.randn(hidden, intermediate).to(dtype)
            a @ b  # the first call pays for kernel selection
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for _ in range(4):
                    a @ b
                best = min(best, time.perf_counter() - start)
            seconds[dtype] = best
        _FASTER[key] = torch.bfloat16 if seconds[torch.bfloat16] < 0.8 * seconds[torch.float32] else torch.float32
    return _FASTER[key]


def model_dtype(config, device: str = "cpu"):
    """faster_dtype() for a transformers config's own widths."""
    cfg = getattr(config, "text_config", None) or config
    return faster_dtype(getattr(cfg, "hidden_size", 576), getattr(cfg, "intermediate_size", 4 * 576), device=device)


def dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.").replace("bfloat16", "bf16")


def main() -> int:
    m = this_machine()
    print(m.describe())
    print(f"faster for inference here: {dtype_name(faster_dtype(device=m.device))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
