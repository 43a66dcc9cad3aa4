"""What every benchmark script reports next to its numbers."""

import json
import os
import platform
import re
import resource
import time
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


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class Timer:
    """Wall time plus the 1-min load average at start and end."""

    def __enter__(self):
        self.load_before = load1()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.load_after = load1()

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}seconds": self.seconds, f"{prefix}load_before": self.load_before,
                f"{prefix}load_after": self.load_after}


DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(title: str, body: str) -> None:
    """Replace (or append) only the ``## title`` section of docs/benchmarks.md."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text.rstrip() + "\n")


def json_block(result) -> list:
    """Markdown lines of a fenced JSON block holding ``result`` (the raw figures under a bench's table)."""
    return ["```json", json.dumps(result, indent=1, default=str), "```"]


def write_marked_block(doc, name: str, body: str, title: str = "") -> None:
    """Replace the text between ``<!-- name: begin -->`` and ``<!-- name: end -->`` in the Markdown file ``doc``
    by ``body``; without the markers, append them (under ``## title`` when given)."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    doc = Path(doc)
    text = doc.read_text() if doc.exists() else ""
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + (f"## {title}\n\n" if title else "") + block + "\n"
    doc.write_text(text)


def save_log_log_plot(path, series, xlabel: str, ylabel: str, title: str, figsize=(7, 4.5), draw=None) -> None:
    """A log-log line plot of ``series`` saved as PNG to ``path``.

    ``series``: iterable of ``(label, xs, ys, linestyle)``; ``draw(ax)``, optional, adds to the axes
    (a target line, say) before the legend is drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    for label, xs, ys, linestyle in series:
        ax.plot(xs, ys, marker="o", label=label, linestyle=linestyle)
    if draw is not None:
        draw(ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
