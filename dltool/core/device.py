"""--device: auto|cpu|cuda|cuda:N|mps, or DLTOOL_DEVICE."""

from __future__ import annotations

import os
import re

from dltool.core.errors import DeviceError, OptionError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(name: str | None = None):
    """Return a torch.device, failing clearly when the requested one is absent."""
    import torch

    name = (name or os.environ.get("DLTOOL_DEVICE") or "auto").strip().lower()
    if not _DEVICE_RE.match(name):
        raise OptionError(f"--device '{name}' is not a device", "use auto, cpu, cuda, cuda:N or mps")
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


def cpu_only_notice(device_name: str | None, what: str) -> None:
    """For algorithms with no GPU path: validate the flag, then say once that we run on CPU."""
    from dltool.core.console import info

    name = (device_name or os.environ.get("DLTOOL_DEVICE") or "auto").strip().lower()
    if name in ("cpu", "auto"):
        return  # nothing to check or say, and no torch import (it costs a second or two)
    resolve_device(name)  # a device that is not there is still an error
    info(f"note: {what} has no GPU implementation; running on CPU")
