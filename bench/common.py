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
