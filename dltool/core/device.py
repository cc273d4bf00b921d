"""--device: auto|cpu|cuda|cuda:N|mps, or DLTOOL_DEVICE.

`placed_on` is what an algorithm asks: which device do I run on? It answers "cpu" without
importing torch (a second of start-up) whenever it can tell that no GPU will be used; `resolve_device`
is the full answer with torch, for code that needs a torch.device.
"""

from __future__ import annotations

import glob
import os
import re
import sys

from dltool.core.errors import DeviceError, OptionError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def device_name(name: str | None = None) -> str:
    """The requested device (the flag, else DLTOOL_DEVICE, else auto), checked for spelling."""
    name = (name or os.environ.get("DLTOOL_DEVICE") or "auto").strip().lower()
    if not _DEVICE_RE.match(name):
        raise OptionError(f"--device '{name}' is not a device", "use auto, cpu, cuda, cuda:N or mps")
    return name


def gpu_may_be_present() -> bool:
    """False when this machine surely has no GPU torch could use: no NVIDIA or ROCm device node, and not
    macOS (MPS). Cheap: it looks at /dev instead of importing torch."""
    return sys.platform == "darwin" or bool(glob.glob("/dev/nvidia*")) or os.path.exists("/dev/kfd")


def runs_on_cpu(name: str | None = None) -> bool:
    """True when the requested device is surely the CPU: --device cpu, or auto where no GPU is present."""
    name = device_name(name)
    return name == "cpu" or (name == "auto" and not gpu_may_be_present())


def native_cpu_bfloat16() -> bool:
    """True when this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX tiles), where autocast to
    bfloat16 on a CPU pays (benchmarks/cpu_amp.py); False where torch cannot tell."""
    import torch

    return any(getattr(torch.cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported",
                                                                         "_is_amx_tile_supported"))


def resolve_device(name: str | None = None):
    """Return a torch.device, failing clearly when the requested one is absent."""
    import torch

    name = device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name} was asked for but CUDA is not available on this machine",
                              "use --device cpu (or auto)")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                              f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
        return torch.device(name)
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("--device mps was asked for but MPS is not available", "use --device cpu")
    return torch.device(name)


def placed_on(name: str | None, what: str, supported: tuple[str, ...] = ("cpu",)) -> str:
    """The device `what` runs on: the requested one when its type is in `supported`, else the CPU,
    said once on stderr ("note: ... running on CPU"). A device that is not there is still an error.
    No torch import when the answer is the CPU by --device cpu, or auto on a machine without a GPU."""
    from dltool.core.console import info

    if runs_on_cpu(name):
        return "cpu"
    dev = resolve_device(name)
    if dev.type in supported:
        return str(dev)
    if dev.type != "cpu":
        kind = "GPU" if supported == ("cpu",) else dev.type
        info(f"note: {what} has no {kind} implementation; running on CPU")
    return "cpu"
