"""Nothing a run writes may destroy what it reads: path checks before any work, and atomic outputs.

Two halves:

- :func:`check_paths` runs before any work. It refuses an output path that is also an input
  (the same file: resolved through symbolic and hard links, case-folded on a case-insensitive
  file system), two outputs that share a file, and an output whose folder cannot be written,
  with one message naming both parameters (or the parameter and the folder).
- :class:`OutputFiles` (and :func:`atomic_write` for one text file) writes every output to a
  hidden *partial* file next to its destination and renames them into place only when all
  of them are complete, so a failure, a cancel or a killed process leaves earlier files as
  they were. A partial folder left by a killed process is removed by the next run that writes
  into the same folder (:func:`remove_stale_partials`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import socket
import tempfile
import uuid
from typing import Iterable, Mapping, Optional, Union

from .errors import BalancedSamplingError

PathOrPaths = Union[str, os.PathLike, Iterable, None]

#: Formats whose layer is several files (``name.shp`` + ``name.dbf`` ...): renamed together.
MULTI_FILE_EXTENSIONS = (".shp", ".tab", ".mif")
#: Companion files of an earlier layer that are removed when a new multi-file layer replaces it.
STALE_COMPANIONS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".id", ".map", ".dat", ".ind")


# --------------------------------------------------------------------------- identity


@functools.lru_cache(maxsize=256)
def _case_insensitive(folder: str) -> bool:
    """Whether the file system holding the existing ``folder`` ignores letter case in names."""
    if os.path.normcase("A") == "a":  # Windows
        return True
    probe = folder
    while True:
        name = os.path.basename(probe)
        if name.swapcase() != name:
            twin = os.path.join(os.path.dirname(probe), name.swapcase())
            try:
                return os.path.samefile(probe, twin)
            except OSError:
                return False
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent


def _existing_ancestor(path: str) -> str:
    folder = path
    while not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def file_identity(path) -> str:
    """A key equal for two names of the same file: absolute, links resolved, case-folded where the
    file system ignores case. ``path`` need not exist."""
    resolved = os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if _case_insensitive(_existing_ancestor(os.path.dirname(resolved))):
        resolved = resolved.casefold()
    return resolved


def same_file(a, b) -> bool:
    """True if ``a`` and ``b`` name one file (also through a hard link); they need not exist."""
    with contextlib.suppress(OSError):
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    return file_identity(a) == file_identity(b)


# --------------------------------------------------------------------------- checks before any work


def _paths(value: PathOrPaths) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)] if os.fspath(value) else []
    return [os.fspath(v) for v in value if v]


def check_paths(
    writes: Mapping[str, Optional[str]],
    reads: Optional[Mapping[str, PathOrPaths]] = None,
) -> None:
    """Refuse outputs that would overwrite an input or each other, or cannot be written.

    Parameters
    ----------
    writes : parameter name -> path the run will write (None or "" when not asked for). A file
        that is read and rewritten (an embedding cache) is listed here, and not in ``reads``.
    reads : parameter name (or a description such as "image rasters (field image_path)") ->
        one path or several that the run reads.

    Raises
    ------
    BalancedSamplingError naming both parameters (and the file) at the first conflict, or the
    output and its folder when the folder is missing or not writable.
    """
    outputs = [(name, path) for name, value in writes.items() for path in _paths(value)]
    for i, (name, path) in enumerate(outputs):
        for other_name, other in outputs[:i]:
            if same_file(path, other):
                raise BalancedSamplingError(
                    f"{other_name} and {name} both point to '{path}'; one would overwrite the other. "
                    "Give each output its own file."
                )
    if reads:
        by_identity = {}
        for name, value in reads.items():
            for path in _paths(value):
                by_identity.setdefault(file_identity(path), (name, path))
        for name, path in outputs:
            hit = by_identity.get(file_identity(path))
            if hit is None and os.path.exists(path):  # hard links and other names of one file
                hit = next(((n, p) for n, p in by_identity.values() if os.path.exists(p) and same_file(p, path)),
                           None)
            if hit is not None:
                raise BalancedSamplingError(
                    f"{name} '{path}' is the input {hit[0]}" + (f" ('{hit[1]}')" if hit[1] != path else "")
                    + ": writing it would destroy the input. Choose another file for the output."
                )
    for name, path in outputs:
        check_writable(path, name)


def check_writable(path, name: str = "The output") -> None:
    """Raise unless a file can be created in ``path``'s folder (tested by creating one) and
    ``path`` is not a folder or a read-only file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise BalancedSamplingError(f"{name} '{path}' is a folder; give a file name inside it.")
    if not os.path.isdir(folder):
        raise BalancedSamplingError(
            f"Cannot write {name} '{path}': the folder '{folder}' does not exist. Create it or choose another."
        )
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise BalancedSamplingError(
            f"Cannot write {name} '{path}': the file is read-only. Make it writable or choose another file."
        )
    try:  # os.access says yes to root on a read-only mount: only creating a file tells
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".balanced-sampling-probe-"):
            pass
    except OSError as exc:
        raise BalancedSamplingError(
            f"Cannot write {name} '{path}': the folder '{folder}' is not writable ({exc.strerror or exc}). "
            "Choose a folder you can write to."
        ) from None


# --------------------------------------------------------------------------- partial files


#: Partial outputs live in a hidden folder beside the destination, under the destination's own
#: file name (so a GeoPackage's layer gets the final name): ``.balanced-sampling-partial-<host>-<pid>-<random>``.
PARTIAL_FOLDER = ".balanced-sampling-partial"
_PARTIAL_RX = re.compile(r"^\.balanced-sampling-partial-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}$")


def _host_tag() -> str:
    return hashlib.blake2b(socket.gethostname().encode(), digest_size=3).hexdigest()


def partial_path(path) -> str:
    """A new partial file for ``path``: same name, in a new hidden folder next to it (same file system,
    so the final rename is atomic)."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    partial_folder = os.path.join(folder, f"{PARTIAL_FOLDER}-{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(partial_folder)
    return os.path.join(partial_folder, name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_partials(path) -> list[str]:
    """Delete the partial folders beside ``path`` left by a process of this host that no longer
    runs (killed mid-write); return them."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _PARTIAL_RX.match(entry.name)
            if not match or not entry.is_dir(follow_symlinks=False) or match.group(1) != _host_tag():
                continue
            pid = int(match.group(2))
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    return removed


def _companions(partial: str) -> list[str]:
    """The files of a partial layer: the file itself, plus ``.dbf``, ``.shx``... of multi-file formats."""
    folder = os.path.dirname(partial)
    if os.path.splitext(partial)[1].lower() not in MULTI_FILE_EXTENSIONS:
        return [partial]
    return [os.path.join(folder, name) for name in os.listdir(folder)]


def promote(partial: str, path: str) -> None:
    """Rename a complete partial output (and its companion files) onto ``path``, keeping the old
    file's permission bits, and remove the partial folder."""
    folder = os.path.dirname(os.path.abspath(path))
    files = _companions(partial)
    for source in files:
        target = os.path.join(folder, os.path.basename(source))
        if os.path.exists(target):
            with contextlib.suppress(OSError):
                shutil.copymode(target, source)
        os.replace(source, target)
    if len(files) > 1:  # an old spatial index or code page file would not match the new layer
        stem = os.path.splitext(os.path.basename(path))[0]
        written = {os.path.basename(f) for f in files}
        for extension in STALE_COMPANIONS:
            old = stem + extension
            if old not in written and os.path.exists(os.path.join(folder, old)):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, old))
    discard(partial)


def discard(partial: str) -> None:
    """Remove a partial output and its folder."""
    shutil.rmtree(os.path.dirname(partial), ignore_errors=True)


class OutputFiles:
    """Several outputs that appear together or not at all.

    Usage::

        with OutputFiles() as outputs:
            write_layer(outputs.partial(layer_path))
            write_csv(outputs.partial(csv_path))
            outputs.commit()          # every partial renamed into place

    Leaving the block without :meth:`commit` (an error, a cancel) deletes the partial files;
    the destinations keep their earlier content.
    """

    def __init__(self):
        self._pending: list[tuple[str, str]] = []

    def partial(self, path) -> str:
        path = os.fspath(path)
        remove_stale_partials(path)
        partial = partial_path(path)
        self._pending.append((partial, path))
        return partial

    def commit(self) -> None:
        for partial, path in self._pending:
            if not os.path.exists(partial):
                raise BalancedSamplingError(f"The output '{path}' was not written completely; nothing was replaced.")
        for partial, path in self._pending:
            promote(partial, path)
        self._pending = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for partial, _ in self._pending:
            discard(partial)
        self._pending = []


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", encoding: str = "utf-8", newline: Optional[str] = None):
    """Open a partial file next to ``path`` for writing; on success it replaces ``path``.

    If the ``with`` block raises (or the process dies), ``path`` keeps its old content (a
    killed process's partial file is removed by the next write of ``path``). A replaced file
    keeps its permission bits; a new one gets the usual umask ones.

    Usage::

        with atomic_write("out.html") as handle:
            handle.write(text)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BalancedSamplingError(f"Cannot write '{path}': the folder '{folder}' does not exist.")
    with OutputFiles() as outputs:
        temporary = outputs.partial(path)
        # os.open with 0o666 honours the umask like open(); O_BINARY stops Windows from translating newlines twice
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        text = "b" not in mode
        with os.fdopen(fd, mode, encoding=encoding if text else None, newline=newline if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        outputs.commit()
