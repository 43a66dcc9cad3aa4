"""What every benchmark script reports next to its numbers."""

import os
import platform
import re
from pathlib import Path


def machine() -> str:
    """Cores, CPU model and OS, e.g. '2 cores (nproc), AMD EPYC ..., Linux x86_64'."""
    cpu = "unknown CPU"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    return f"{os.cpu_count()} cores (nproc), {cpu}, {platform.system()} {platform.machine()}"


def log_log_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log-log axes with grid and a small legend, as every benchmark plot draws them."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
