"""Never lose a user's data: the files a run writes, checked against the files it reads before any work, one
writer per destination, and disk space.

Standard library only: the worker guards every tool run with :func:`guarded_run`, and the QGIS side uses the
same naming rules to clean up after a cancelled run (:func:`leftovers`).

What a run writes for a destination (:func:`written_files`): for every destination the file itself, its temporary
``out.tif.tmp`` and the lock ``.out.tif.iamap-lock``; for a raster also its partial file ``out.partial.tif`` and
resume manifest ``out.partial.json``, its record ``out.iamap.json``, GDAL's ``out.tif.aux.xml`` and the style
``out.qml``. None of them may be a file the run reads, or a file of another destination of the same run. Only what
a destination really writes is claimed, so a model ``umap.iamapmodel`` and a raster ``umap.tif`` of one run do
not collide.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import time
from pathlib import Path

from .contract import TOOLS, Kind
from .errors import IamapError, ParameterError
from .parameters import destination_files, input_files, parameter_of
from .read_failures import read_failure_error

#: Refuse when the free space is below this fraction of an output's uncompressed size. IAMAP's GeoTIFFs are
#: deflate-compressed: float features shrink by 10-40 %, labels by more, so below half of the raw size the output
#: cannot fit; between half and the whole it may, and the log warns.
REFUSE_BELOW = 0.5


def partial_path(output: Path) -> Path:
    """Where an output is written until it is complete (``out.tif`` -> ``out.partial.tif``)."""
    return output.with_name(f"{output.stem}.partial{output.suffix or '.tif'}")


def sidecar_path(output: Path) -> Path:
    """The JSON record of the parameters that made an output (``out.tif`` -> ``out.iamap.json``)."""
    return output.with_name(f"{output.stem}.iamap.json")


def lock_path(destination: Path) -> Path:
    """The lock file of ``destination``, beside it."""
    return destination.with_name(f".{destination.name}.iamap-lock")


def written_files(destination: Path, kind: Kind = Kind.RASTER_DESTINATION) -> list[Path]:
    """Every file a run may create or replace for ``destination``, a destination parameter of ``kind`` (see the
    module docstring)."""
    files = [destination, destination.with_name(destination.name + ".tmp"), lock_path(destination)]
    if kind is not Kind.RASTER_DESTINATION:  # a vector, a model file, a report: written whole, through the .tmp
        return files
    partial = partial_path(destination)
    return files + [partial, partial.with_suffix(".json"), sidecar_path(destination),
                    destination.with_name(destination.name + ".aux.xml"), partial.with_name(partial.name + ".aux.xml"),
                    destination.with_name(f"{destination.stem}.qml")]


def leftovers(tool: str, params: dict) -> list[Path]:
    """Files a cancelled or failed run of ``tool`` leaves that no later run continues: the partial files of tools
    that cannot resume, and temporary files. (The encoder's partial file and manifest are kept: RESUME continues
    them.)"""
    resumable = "RESUME" in TOOLS[tool].names
    found = []
    for destination in _paths(tool, params, destination_files).values():
        partial = partial_path(destination)
        candidates = [destination.with_name(destination.name + ".tmp"), partial.with_name(partial.name + ".tmp")]
        if not resumable:
            candidates += [partial, partial.with_name(partial.name + ".aux.xml")]
        found += [path for path in candidates if path.is_file()]
    return found


def clean_after_kill(tool: str, params: dict) -> None:
    """After the worker of a run was killed (cancel): remove its :func:`leftovers` and its lock files, each lock
    file only when no other run holds it."""
    for path in leftovers(tool, params):
        with contextlib.suppress(OSError):
            path.unlink()
    for destination in _paths(tool, params, destination_files).values():
        path = lock_path(destination)
        if not path.exists():
            continue
        with contextlib.suppress(OSError), open(path, "a+") as handle:
            if _try_lock(handle):
                path.unlink()


def _same_file_key(path: Path) -> str:
    """A path's identity as the file system sees it: symlinks and ``..`` resolved, case folded where the file
    system ignores case."""
    return os.path.normcase(os.path.realpath(path))


def _paths(tool: str, params: dict, files_of) -> dict[str, Path]:
    """``files_of`` (:func:`engine.parameters.input_files` or ``destination_files``) as paths."""
    return {name: Path(value) for name, value in files_of(tool, params).items()}


def check_destinations(tool: str, params: dict) -> None:
    """Refuse, before any work, a destination that would overwrite an input or another destination of the run, or
    that cannot be written. Each refusal names the destination parameter and says how to fix it."""
    inputs = {_same_file_key(path): name for name, path in _paths(tool, params, input_files).items()}
    claimed: dict[str, str] = {}
    for name, destination in _paths(tool, params, destination_files).items():
        for written in written_files(destination, TOOLS[tool][name].kind):
            key = _same_file_key(written)
            if key in inputs:
                what = "is" if written == destination else f"would write {written.name}, which is"
                raise ParameterError(name, f"{destination} {what} the file given as {inputs[key]}: IAMAP never "
                                           f"overwrites its input. Choose another file name for {name}.")
            if key in claimed and claimed[key] != name:
                raise ParameterError(name, f"{destination} collides with {claimed[key]} ({written.name} would be "
                                           f"written for both). Choose another file name for {name}.")
            claimed[key] = name
        check_writable(name, destination)


def special_file(path: Path) -> str:
    """What ``path`` is when it exists but is not a regular file or folder ("a named pipe (FIFO)", "a device");
    "" otherwise. Reading a FIFO waits for a writer forever; replacing a device (/dev/null) would destroy it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return ""


def input_file_problem(path: str, folder_allowed: bool = False) -> str:
    """Why an existing input ``path`` cannot be read as a file ("" when it can, or when it does not exist: the
    tools name a missing file themselves). ``folder_allowed``: a layer may be a folder (an Arc/Info grid, a
    folder of shapefiles), which GDAL then judges."""
    target = Path(path)
    if not os.path.lexists(target):
        return ""
    if target.is_dir():
        return "" if folder_allowed else "is a folder; give a file inside it"
    special = special_file(target)
    if special:
        return f"is {special}, not a file; give a file"
    if not os.access(target, os.R_OK):
        return ("cannot be read by this user (permission denied); give a file you can read, or ask its owner to "
                "make it readable")
    return ""


def check_inputs(tool: str, params: dict) -> None:
    """Refuse, before any work, an input file parameter that names a folder, a FIFO, a device or an unreadable
    file: the message names the parameter, where GDAL would fail obscurely or (a FIFO) wait forever."""
    for name, value in input_files(tool, params).items():
        layer = TOOLS[tool][parameter_of(name)].kind is not Kind.FILE
        problem = input_file_problem(value.split("|")[0], folder_allowed=layer)  # a vector's "file.gpkg|layername=.."
        if problem:
            raise ParameterError(name, f"{value.split('|')[0]} {problem}.")


def check_writable(parameter: str, destination: Path) -> None:
    """A destination must be a file name in a folder this process can write (the folder may not exist yet)."""
    if destination.is_dir():
        raise ParameterError(parameter, f"{destination} is a folder; give a file name inside it.")
    special = special_file(destination)
    if special:
        raise ParameterError(parameter, f"{destination} is {special}, not a file: IAMAP writes files (and would "
                                        "replace it). Give a file name.")
    folder = destination.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ParameterError(parameter, f"{folder} is a file, so {destination} cannot be created under it; choose "
                                        "a file name in a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ParameterError(parameter, f"the folder {folder} cannot be written by this user; choose a file in a "
                                        "folder of yours (your home or documents folder, for example).")


def ensure_space(parameter: str, destination: Path, needed_bytes: int, reporter) -> None:
    """Refuse early when ``destination``'s disk clearly cannot hold ``needed_bytes`` (uncompressed size); warn
    when it may not (see :data:`REFUSE_BELOW`)."""
    folder = destination.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < REFUSE_BELOW * needed_bytes:
        raise ParameterError(parameter, f"not enough space on the disk holding {folder} ({_mb(free)} free): the "
                                        f"output needs about {_mb(needed_bytes)} uncompressed and at least "
                                        f"{_mb(REFUSE_BELOW * needed_bytes)} compressed. Free space, or choose a file "
                                        f"on another disk for {parameter}.")
    if free < needed_bytes:
        reporter.warning(f"{parameter}: the disk holding {folder} has {_mb(free)} free and the output takes up to "
                         f"{_mb(needed_bytes)} uncompressed; it may not fit.")


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


#: GDAL reports a full disk on stderr and raises only "Write failed": a write error with less than this free on the
#: destination's disk is taken for a full disk.
NEARLY_FULL = 16 * 2**20


def disk_full_error(tool: str, params: dict, exc: BaseException) -> IamapError | None:
    """The user's message for a write that failed because the disk is full (None for any other error)."""
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(e) for e in chain)
    destinations = _paths(tool, params, destination_files)
    if not destinations:
        return None
    name, destination = next(((n, d) for n, d in destinations.items() if d.name in text),
                             next(iter(destinations.items())))
    folder = destination.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    said_full = any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in chain) or any(
        marker in text for marker in ("No space left", "Disk quota exceeded"))
    write_failed = any(marker in text for marker in ("Write failed", "Write error", "write error"))
    if not (said_full or (write_failed and free < NEARLY_FULL)):
        return None
    return ParameterError(name, f"no space left on the disk holding {folder.resolve()} while writing "
                                f"{destination.name} ({_mb(free)} free). Free space, or choose a file on another "
                                f"disk for {name}; nothing was left under the final name.")


class DestinationLock:
    """An exclusive OS lock on a destination for one run.

    The lock is a byte-range/flock lock on a small file beside the destination: the operating system drops it
    when the process ends, however it ends, so a killed run never leaves a destination locked. The file holds
    the owner's pid and start time for the message the second run shows.
    """

    def __init__(self, parameter: str, destination: Path):
        self.parameter, self.destination, self.path = parameter, destination, lock_path(destination)
        self.handle = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # the file may be removed by its previous owner between open and lock: retry
            handle = open(self.path, "a+")
            if not _try_lock(handle):
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                handle.close()
                raise ParameterError(self.parameter, f"another IAMAP run is writing {self.destination} ({owner}); "
                                                     f"wait for it to finish, or choose another file for "
                                                     f"{self.parameter}.")
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
                handle.flush()
                self.handle = handle
                return
            handle.close()
        raise IamapError(f"Could not lock {self.destination}: its lock file keeps changing.")

    def release(self) -> None:
        if self.handle is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before unlocking: a waiting run then sees a new file, never this one
        self.handle.close()  # closing drops the lock
        self.handle = None


def _try_lock(handle) -> bool:
    if sys.platform == "win32":
        # platform module: Windows only
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    # platform module: POSIX only
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def guarded_run(tool: str, params: dict, reporter=None):
    """Check every destination of the run, hold a lock on each while the tool runs, and on failure remove what no
    later run continues. A full disk becomes a message naming the destination parameter, an input that cannot be
    read to the end one naming the input parameter. A destination's folder that does not exist is created (by its
    lock), and ``reporter`` says so."""
    if tool not in TOOLS:  # test tools declare no files
        yield
        return
    check_inputs(tool, params)
    check_destinations(tool, params)
    locks = [DestinationLock(name, path) for name, path in _paths(tool, params, destination_files).items()]
    created: dict[Path, list[str]] = {}
    for lock in locks:
        if not lock.path.parent.exists():
            created.setdefault(lock.path.parent, []).append(lock.parameter)
    try:
        for lock in locks:
            lock.acquire()
        for folder, names in created.items():
            if reporter is not None:
                reporter.text(f"{', '.join(names)}: the folder {folder} did not exist; it was created.")
        try:
            yield
        except BaseException as exc:
            for path in leftovers(tool, params):
                with contextlib.suppress(OSError):
                    path.unlink()
            error = disk_full_error(tool, params, exc) or read_failure_error(tool, params, exc)
            if error is not None:
                raise error from None
            raise
    finally:
        for lock in locks:
            lock.release()
