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
from .i18n import _

PathOrPaths = Union[str, os.PathLike, Iterable, None]

#: Formats whose layer is several files (``name.shp`` + ``name.dbf`` ...): renamed together.



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


class LayerInFile(tuple):
    """``(path, layer name)``: one layer of a file that holds several (a GeoPackage). Writing it
    replaces that layer only, so it collides with a read of the same layer or of the whole file."""

    def __new__(cls, path, layer):
        return super().__new__(cls, (os.fspath(path), layer))

    @property
    def path(self) -> str:
        return self[0]

    @property
    def layer(self):
        return self[1]


class FolderOutput(str):
    """A folder the run adds files to (a partitioned embedding cache: one new part per save), never a file it
    replaces: an existing folder is fine where a file output would be refused."""


def files_under(folder) -> list[str]:
    """Every file below ``folder`` (e.g. a local model folder a run reads), for the path checks; [] when
    ``folder`` is not an existing folder (a hub model id, or nothing)."""
    folder = os.path.expanduser(os.fspath(folder or ""))
    if not folder or not os.path.isdir(folder):
        return []
    return [os.path.join(root, name) for root, _dirs, names in os.walk(folder) for name in names]


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` lies in ``folder`` or below it (names need not exist)."""
    inner, outer = file_identity(path), file_identity(folder)
    return inner != outer and inner.startswith(outer.rstrip(os.sep) + os.sep)


def _entries(value) -> list:
    """Paths (str) and :class:`LayerInFile` of one parameter's value."""
    if value is None:
        return []
    if isinstance(value, LayerInFile):
        return [value] if value.path else []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)] if os.fspath(value) else []
    return [v if isinstance(v, LayerInFile) else os.fspath(v) for v in value if v]


def _path_of(entry) -> str:
    return entry.path if isinstance(entry, LayerInFile) else entry


def _overlap(written, read) -> bool:
    """Whether writing ``written`` destroys ``read`` (paths or :class:`LayerInFile`)."""
    if not same_file(_path_of(written), _path_of(read)):
        return False
    if isinstance(written, LayerInFile) and isinstance(read, LayerInFile):
        return str(written.layer).casefold() == str(read.layer).casefold()
    # A whole file written over a layer of it, or a layer written into a file read whole (whose one layer
    # may be that one): a collision.
    return True


def _layer_files(path: str) -> list[str]:
    """The other files of a multi-file layer (``x.dbf``, ``x.shx`` of ``x.shp``) that writing ``path`` replaces."""
    stem, extension = os.path.splitext(path)
    return [stem + ext for ext in LAYER_FILES.get(extension.lower(), ())]


def check_paths(
    writes: Mapping[str, Optional[str]],
    reads: Optional[Mapping[str, PathOrPaths]] = None,
    writable: bool = True,
) -> None:
    """Refuse outputs that would overwrite an input or each other, or cannot be written.

    Parameters
    ----------
    writes : parameter name -> path the run will write (None or "" when not asked for), or a
        :class:`LayerInFile` for a new layer inside an existing file. A file that is read and
        rewritten (an embedding cache) is listed here, and not in ``reads``.
    reads : parameter name (or a description such as "a raster of the field image_path") ->
        one path (or :class:`LayerInFile`) or several that the run reads.
    writable : also check that every output's folder exists and can be written.

    Raises
    ------
    BalancedSamplingError naming both parameters (and the file) at the first conflict, or the
    output and its folder when the folder is missing or not writable.
    """
    outputs = [(name, entry) for name, value in writes.items() for entry in _entries(value)]
    for i, (name, entry) in enumerate(outputs):
        for other_name, other in outputs[:i]:
            if _overlap(entry, other):
                raise BalancedSamplingError(
                    _("{first} and {second} both point to '{path}'; one would overwrite the other. Give each output "
                      "its own file.").format(first=other_name, second=name, path=_path_of(entry))
                )
            folder, inner = ((entry, other) if isinstance(entry, FolderOutput) else
                             (other, entry) if isinstance(other, FolderOutput) else (None, None))
            if folder is not None and _inside(_path_of(inner), folder):
                folder_name, inner_name = (name, other_name) if folder is entry else (other_name, name)
                raise BalancedSamplingError(
                    _("{inner} '{path}' is inside the folder of {folder} ('{folder_path}'), which must hold nothing "
                      "else. Write it outside that folder.").format(
                        inner=inner_name, path=_path_of(inner), folder=folder_name, folder_path=folder))
    if reads:
        inputs = [(name, entry) for name, value in reads.items() for entry in _entries(value)]
        by_identity = {}
        for name, entry in inputs:
            by_identity.setdefault(file_identity(_path_of(entry)), []).append((name, entry))
        for name, entry in outputs:
            path = _path_of(entry)
            for written in [entry] + (_layer_files(path) if not isinstance(entry, LayerInFile) else []):
                candidates = list(by_identity.get(file_identity(_path_of(written)), []))
                if not candidates and os.path.exists(_path_of(written)):  # hard links: another name of one file
                    candidates = [(n, e) for n, e in inputs
                                  if os.path.exists(_path_of(e)) and same_file(_path_of(e), _path_of(written))]
                hit = next(((n, e) for n, e in candidates if _overlap(written, e)), None)
                if hit is not None:
                    shown = _path_of(hit[1])
                    if shown != path:
                        message = _("{output} '{path}' is the input {input} ('{input_path}'): writing it would "
                                    "destroy the input. Choose another file for the output.")
                    else:
                        message = _("{output} '{path}' is the input {input}: writing it would destroy the input. "
                                    "Choose another file for the output.")
                    raise BalancedSamplingError(message.format(output=name, path=path, input=hit[0], input_path=shown))
    if writable:
        for name, entry in outputs:
            check_writable(_path_of(entry), name)


#: File name endings of the text outputs, for :func:`check_replaced_kind`.
CSV_FILES = (".csv", ".tsv", ".txt")
HTML_FILES = (".html", ".htm")
GEOJSON_FILES = (".geojson", ".json")


def check_replaced_kind(path, extensions, name: str = "The output") -> None:
    """Refuse to replace an existing file that is not of the output's kind: a report written over a training
    CSV, a CSV over a model's ``config.json`` or an embedding cache. ``extensions``: the endings (lower case,
    with the dot) of the output's kind; a new file, or one of the same kind (a re-run), passes."""
    if not path or isinstance(path, (FolderOutput, LayerInFile)):
        return
    path = os.fspath(path)
    if not os.path.isfile(path) or os.path.splitext(path)[1].lower() in extensions:
        return
    raise BalancedSamplingError(
        _("{output} '{path}' is an existing file of another kind (the output writes {extensions}); writing it would "
          "replace that file. Choose a new file name ending in {extension}.").format(
            output=name, path=path, extensions=" / ".join(extensions), extension=extensions[0]))


def create_output_folders(writes: Mapping[str, Optional[str]]) -> None:
    """Create the missing folder of each output path in ``writes`` (name -> path, as :func:`check_paths` takes
    them), as a config's outputs expect; call it after the collision checks, so a refused run creates none."""
    for name, path in writes.items():
        folder = os.path.dirname(os.path.abspath(path)) if isinstance(path, str) and path else None
        if folder and not os.path.isdir(folder):
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise BalancedSamplingError(
                    _("Cannot create the folder of {output} '{path}' ({error}); choose another folder.").format(
                        output=name, path=path, error=exc.strerror or exc)
                ) from None


def creation_refused(folder) -> Optional[OSError]:
    """Why no file can be created in ``folder`` (the error of a probe file's creation), or None when one can.
    ``os.access`` says yes to root on a read-only mount: only creating a file tells."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".balanced-sampling-probe-"):
            return None
    except OSError as exc:
        return exc


def check_writable(path, name: str = "The output") -> None:
    """Raise unless a file can be created in ``path``'s folder (tested by creating one) and
    ``path`` is not a folder or a read-only file; a :class:`FolderOutput` must be a folder (or not exist yet),
    and files must be creatable in it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if isinstance(path, FolderOutput):
        if os.path.exists(path) and not os.path.isdir(path):
            raise BalancedSamplingError(_("{output} '{path}' is a file, not a folder; give a folder, or a file name "
                                          "without the trailing separator.").format(output=name, path=path))
        folder = path if os.path.isdir(path) else folder
    elif os.path.isdir(path):
        raise BalancedSamplingError(_("{output} '{path}' is a folder; give a file name inside it.").format(
            output=name, path=path))
    if not os.path.isdir(folder):
        raise BalancedSamplingError(
            _("Cannot write {output} '{path}': the folder '{folder}' does not exist. Create it or choose another.")
            .format(output=name, path=path, folder=folder)
        )
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise BalancedSamplingError(
            _("Cannot write {output} '{path}': the file is read-only. Make it writable or choose another file.")
            .format(output=name, path=path)
        )
    refused = creation_refused(folder)
    if refused is not None:
        raise BalancedSamplingError(
            _("Cannot write {output} '{path}': the folder '{folder}' is not writable ({error}). Choose a folder you "
              "can write to.").format(output=name, path=path, folder=folder, error=refused.strerror or refused))


# --------------------------------------------------------------------------- partial files


#: Partial outputs live in a hidden folder beside the destination, under the destination's own
#: file name (so a GeoPackage's layer gets the final name): ``.balanced-sampling-partial-<host>-<pid>-<random>``.
PARTIAL_FOLDER = ".balanced-sampling-partial"
_PARTIAL_RX = re.compile(r"^\.balanced-sampling-partial-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}$")
#: Inside a partial folder: the files an output replaced, kept until the whole commit succeeded.
PREVIOUS = ".previous"


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
    """Whether process ``pid`` of this host still runs."""
    if os.name == "nt":  # os.kill(pid, 0) sends CTRL_C_EVENT there
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_partials(path) -> list[str]:
    """Delete the partial folders beside ``path`` left by a process of this host that no longer
    runs (killed mid-write); return them. A file such a process had moved aside while replacing
    it, and whose place is still empty, is put back first."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _PARTIAL_RX.match(entry.name)
            if not match or not entry.is_dir(follow_symlinks=False) or match.group(1) != _host_tag():
                continue
            pid = int(match.group(2))
            if pid != os.getpid() and not _pid_alive(pid):
                previous = os.path.join(entry.path, PREVIOUS)
                for name in os.listdir(previous) if os.path.isdir(previous) else ():
                    if not os.path.exists(os.path.join(folder, name)):
                        with contextlib.suppress(OSError):
                            os.replace(os.path.join(previous, name), os.path.join(folder, name))
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    return removed


def _companions(partial: str) -> list[str]:
    """The files of a partial output: every file in its private partial folder (a shapefile's
    ``.dbf`` and ``.shx``, a GML's ``.xsd``...)."""
    folder = os.path.dirname(partial)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if os.path.isfile(os.path.join(folder, name)))


#: Files that belong to a layer of a multi-file format (by the main file's extension). When a new
#: layer of the SAME format replaces an old one, the old layer's files the new one lacks (a stale
#: spatial index) are moved aside too; files of other formats that share the stem are never touched.
LAYER_FILES = {
    ".shp": (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx"),
    ".tab": (".dat", ".map", ".id", ".ind"),
    ".mif": (".mid",),
}
#: SQLite files (GeoPackage) and the journals SQLite keeps beside them: a ``-wal`` left beside a new file
#: would be replayed into it by the next reader, showing the old file's tables.
SQLITE_FILES = (".gpkg", ".sqlite", ".db")
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def _fsync(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def discard(partial: str) -> None:
    """Remove a partial output and its folder, unless the folder still holds a replaced file that
    could not be put back (the next run that writes there puts it back: :func:`remove_stale_partials`)."""
    folder = os.path.dirname(partial)
    previous = os.path.join(folder, PREVIOUS)
    if os.path.isdir(previous) and os.listdir(previous):
        return
    shutil.rmtree(folder, ignore_errors=True)


class OutputFiles:
    """Several outputs that appear together or not at all.

    Usage::

        with OutputFiles() as outputs:
            write_layer(outputs.partial(layer_path))
            write_csv(outputs.partial(csv_path))
            outputs.commit()          # every partial renamed into place

    Leaving the block without :meth:`commit` (an error, a cancel) deletes the partial files;
    the destinations keep their earlier content. :meth:`commit` is all or nothing too: the files
    it replaces are moved aside first and put back if any rename fails; :meth:`restore` puts them
    back after a successful commit, for a caller whose next step (e.g. a database commit) failed.
    """

    def __init__(self):
        self._pending: list[tuple[str, str]] = []
        self._done: list[tuple[list, list, str]] = []  # (new files placed, old files moved aside, partial)

    def partial(self, path) -> str:
        path = os.fspath(path)
        remove_stale_partials(path)
        partial = partial_path(path)
        self._pending.append((partial, path))
        return partial

    def _promote(self, partial: str, path: str) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        previous = os.path.join(os.path.dirname(partial), PREVIOUS)
        files = _companions(partial)
        names = {os.path.basename(f) for f in files}
        stem, extension = os.path.splitext(os.path.basename(path))
        aside = [name for name in names if os.path.lexists(os.path.join(folder, name))]
        if os.path.exists(path) and extension.lower() in LAYER_FILES:
            aside += [stem + ext for ext in LAYER_FILES[extension.lower()]
                      if stem + ext not in names and os.path.exists(os.path.join(folder, stem + ext))]
        if extension.lower() in SQLITE_FILES:
            base = os.path.basename(path)
            aside += [base + tail for tail in SQLITE_SIDECARS
                      if base + tail not in names and os.path.lexists(os.path.join(folder, base + tail))]
        placed, moved = [], []
        self._done.append((placed, moved, partial))
        for source in files:
            _fsync(source)
        os.makedirs(previous, exist_ok=True)
        for name in aside:
            with contextlib.suppress(OSError):
                shutil.copymode(os.path.join(folder, name), os.path.join(os.path.dirname(partial), name))
            os.replace(os.path.join(folder, name), os.path.join(previous, name))
            moved.append(name)
        for source in files:
            os.replace(source, os.path.join(folder, os.path.basename(source)))
            placed.append(os.path.basename(source))
        _fsync(folder)

    def commit(self) -> None:
        """Rename every partial output into place; on any failure put every replaced file back and raise."""
        for partial, path in self._pending:
            if not os.path.exists(partial):
                raise BalancedSamplingError(
                    _("The output '{path}' was not written completely; nothing was replaced.").format(path=path))
        try:
            for partial, path in self._pending:
                self._promote(partial, path)
        except BaseException:
            self.restore()
            raise
        self._pending = []

    def restore(self) -> None:
        """Undo :meth:`commit`: remove the files it placed and put the replaced ones back."""
        for placed, moved, partial in reversed(self._done):
            folder_of_partial = os.path.dirname(partial)
            folder = os.path.dirname(folder_of_partial)
            for name in placed:
                with contextlib.suppress(OSError):
                    os.replace(os.path.join(folder, name), os.path.join(folder_of_partial, name))
            for name in moved:
                with contextlib.suppress(OSError):
                    os.replace(os.path.join(folder_of_partial, PREVIOUS, name), os.path.join(folder, name))
            discard(partial)
        self._done = []

    def hand_over(self) -> "OutputFiles":
        """A new :class:`OutputFiles` holding what undoes this one's :meth:`commit`, for a last step that runs after
        this block has ended (a layer updated in another thread): the caller calls its :meth:`restore` if that step
        fails, and closes it (``with`` or ``__exit__``) either way."""
        kept = OutputFiles()
        kept._done, self._done = self._done, []
        return kept

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for partial, _target in self._pending:
            discard(partial)
        for _placed, _moved, partial in self._done:  # committed and not restored: the replaced files go now
            shutil.rmtree(os.path.join(os.path.dirname(partial), PREVIOUS), ignore_errors=True)
            discard(partial)
        self._pending, self._done = [], []


def promote(partial: str, path: str) -> None:
    """Rename one complete partial output (and its companion files) onto ``path``; see :class:`OutputFiles`."""
    outputs = OutputFiles()
    outputs._pending.append((partial, path))
    with outputs:
        outputs.commit()


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
        raise BalancedSamplingError(_("Cannot write '{path}': the folder '{folder}' does not exist.").format(
            path=path, folder=folder))
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
