"""Output directories written whole or not at all.

Every command that writes a directory (``run``, ``demo``, ``report``, ``compare``) goes through
:class:`OutputDir`. The protocol, for an output directory ``OUT`` in parent ``P``:

1. **Claim, before any work.** ``P`` is created when missing (its nearest existing ancestor must be a
   directory); ``OUT`` must not be a file; an existing non-empty ``OUT`` is refused unless the command's
   replace policy allows it (``--overwrite``); ``P`` must have at least :data:`MIN_FREE_BYTES` free. The
   lock ``P/.OUT.lock`` is taken with ``fcntl.flock`` (exclusive, non-blocking) and holds the owner's PID: a
   second writer of ``OUT`` stops at once with a message naming that PID. The staging directory
   ``P/.OUT.tmp-<pid>`` is created (this is also the write test: a read-only or full ``P`` fails here).
   Under the lock, siblings ``.OUT.tmp-*`` left by a killed run are removed (logged), and a
   ``.OUT.old-*`` left by a kill in the middle of step 3's fallback is renamed back to ``OUT`` when ``OUT``
   is missing (the old run is restored), else removed.
2. **Work.** Every file of the new output is written into the staging directory (``seed=True`` first fills
   it with hard links to ``OUT``'s files, for a report regenerated in place).
3. **Commit.** ``OUT`` absent: ``rename(staging, OUT)``. ``OUT`` present: ``renameat2(staging, OUT,
   RENAME_EXCHANGE)`` swaps the two atomically (Linux), then the old output, now under the staging name, is
   removed. Where the exchange is not supported: ``rename(OUT, .OUT.old-<pid>)``, ``rename(staging, OUT)``,
   remove the old one (a kill between the two renames is repaired by the next claim, step 1). The parent
   directory is fsynced.
4. **Failure** (an exception, Ctrl-C, a full disk): the staging directory is removed; ``OUT`` is untouched.

So a kill -9 at any moment leaves ``OUT`` holding the old output or the new one, never a mixture, and no
file of an overwritten run survives in the new one. The lock file stays beside ``OUT`` (removing it would
race with a waiting writer); it is empty apart from the last owner's PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import shutil
from enum import Enum
from pathlib import Path
from types import TracebackType

from facebench.errors import FacebenchError

log = logging.getLogger(__name__)

#: A directory whose file system has less free space than this is refused before any work.
MIN_FREE_BYTES = 16 << 20

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class Replace(Enum):
    """When an existing, non-empty output directory may be replaced."""

    NEVER = "never"  #: refused (the default of ``run``, ``report --out``, ``compare``)
    RUNS = "runs"  #: only a previous facebench run (holding ``results.json``): ``demo``'s default
    ALWAYS = "always"  #: ``--overwrite``


def replace_policy(overwrite: bool, default: Replace = Replace.NEVER) -> Replace:
    """``Replace.ALWAYS`` with ``--overwrite``, else ``default``."""
    return Replace.ALWAYS if overwrite else default


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def ensure_parent(path: Path, flag: str) -> Path:
    """Create ``path``'s parent directories; an ancestor that is a file, or one that cannot be created, is
    an error naming ``flag``. Returns the parent."""
    parent = path.parent
    ancestor = _nearest_existing(parent)
    if not ancestor.is_dir():
        raise FacebenchError(f"{flag} {path}: {ancestor} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FacebenchError(f"{flag} {path}: cannot create {parent}: {exc.strerror}") from None
    return parent


def check_free_space(directory: Path, flag: str) -> None:
    """At least :data:`MIN_FREE_BYTES` free in ``directory``'s file system, else an error naming ``flag``."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        raise FacebenchError(
            f"{flag}: {directory} has {free / 2**20:.1f} MiB free, less than the {MIN_FREE_BYTES >> 20} MiB a "
            "run needs; free space or choose another location"
        )


def check_writable_target(path: Path, flag: str, directory: bool) -> None:
    """Before any work: ``path`` (a file target, or a ``directory`` target) can be written. Its parent is
    created; a file where a directory is wanted (or the reverse), a read-only location or a full disk is an
    error naming ``flag``. Writing is tested by creating and removing a temporary file."""
    if directory and path.exists() and not path.is_dir():
        raise FacebenchError(f"{flag} {path}: exists and is not a directory")
    if not directory and path.is_dir():
        raise FacebenchError(f"{flag} {path}: is a directory, expected a file name")
    where = path if directory and path.is_dir() else ensure_parent(path, flag)
    try:
        fd = os.open(where / f".facebench-write-test-{os.getpid()}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise FacebenchError(f"{flag} {path}: cannot write in {where}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(where / f".facebench-write-test-{os.getpid()}")
    check_free_space(where, flag)


def default_out_dir(checkpoint: Path | None, features: Path | None) -> Path:
    """``reports/<checkpoint or features stem>``: where ``run`` writes without ``--out``."""
    stem = (checkpoint or features or Path("run")).name.split(".")[0] or "run"
    return Path("reports") / stem


def _is_run_directory(path: Path) -> bool:
    return (path / "results.json").is_file()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class OutputDir:
    """The claim on one output directory (module protocol). Use as a context manager: ``__enter__`` claims
    (step 1) and returns the staging directory to write into; a clean exit commits (step 3), an exception
    discards (step 4). ``flag`` names the option in messages (``--out``); ``seed`` starts the staging
    directory as hard links to the existing output's files (a report regenerated in place)."""

    def __init__(self, out: str | Path, replace: Replace = Replace.NEVER, flag: str = "--out", seed: bool = False):
        out = Path(out)
        self.out = Path(os.path.realpath(out)) if out.is_symlink() else Path(os.path.abspath(out))
        self.replace = replace
        self.flag = flag
        self.seed = seed
        self.staging: Path | None = None
        self._lock_fd: int | None = None

    @property
    def lock_path(self) -> Path:
        return self.out.parent / f".{self.out.name}.lock"

    def _sibling(self, kind: str, pid: int | str = "") -> Path:
        return self.out.parent / f".{self.out.name}.{kind}-{pid or os.getpid()}"

    def check(self) -> None:
        """Every check of a claim (step 1) without keeping the lock or creating the staging directory: run
        first thing by the commands, before their slow imports, so that a bad ``OUT`` is reported at once.
        The lock is taken and released (the write test, and another writer named)."""
        self._check_place()
        self._lock()
        try:
            self._check_existing()
            check_free_space(self.out.parent, self.flag)
        finally:
            self._unlock()

    def _check_place(self) -> None:
        out, flag = self.out, self.flag
        ensure_parent(out, flag)
        if os.path.lexists(out) and not out.is_dir():
            raise FacebenchError(f"{flag} {out}: exists and is not a directory")
        here = Path(os.path.realpath(os.getcwd()))
        if not self.seed and (here == out or out in here.parents or out == Path.home()):
            raise FacebenchError(f"{flag} {out}: would replace the current or home directory; give a sub-directory")

    def _check_existing(self) -> None:
        out = self.out
        if out.is_dir() and any(out.iterdir()) and not self.seed:
            allowed = self.replace is Replace.ALWAYS or (self.replace is Replace.RUNS and _is_run_directory(out))
            if not allowed:
                what = "a facebench run" if _is_run_directory(out) else "not empty"
                raise FacebenchError(
                    f"{self.flag} {out}: already exists ({what}); pass --overwrite to replace it (the old directory "
                    "is kept until the new output is complete), or choose another directory"
                )

    def __enter__(self) -> Path:
        self._check_place()
        self._lock()
        try:
            self._recover()
            self._check_existing()
            check_free_space(self.out.parent, self.flag)
            staging = self._sibling("tmp")
            try:
                staging.mkdir()
            except OSError as exc:
                raise FacebenchError(f"{self.flag} {self.out}: cannot write in {self.out.parent}: {exc.strerror}") from None
            self.staging = staging
            if self.seed and self.out.is_dir():
                shutil.copytree(self.out, staging, copy_function=_link_or_copy, dirs_exist_ok=True)
        except BaseException:
            self._discard()
            raise
        return staging

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            try:
                self._commit()
            except BaseException:
                self._discard()
                raise
        else:
            self._discard()
        self._unlock()

    # ----------------------------------------------------------------------------------------- steps
    def _lock(self) -> None:
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise FacebenchError(f"{self.flag} {self.out}: cannot write in {self.out.parent}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise FacebenchError(
                f"{self.flag} {self.out}: another facebench process (PID {owner}) is writing this directory "
                f"(lock {self.lock_path}); wait for it to finish or choose another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _recover(self) -> None:
        """Under the lock: repair what a killed writer left (module protocol, step 1)."""
        prefix = f".{self.out.name}."
        for sibling in sorted(self.out.parent.iterdir()):
            name = sibling.name
            if not name.startswith(prefix):
                continue
            kind = name[len(prefix):].split("-", 1)[0]
            if kind == "old" and not os.path.lexists(self.out):
                os.rename(sibling, self.out)
                log.warning("%s: restored the previous output from %s (a run was killed while replacing it)",
                            self.out, sibling.name)
            elif kind in ("old", "tmp"):
                _remove(sibling)
                log.warning("%s: removed %s, left by a killed run", self.out, sibling.name)

    def _commit(self) -> None:
        staging, out = self.staging, self.out
        assert staging is not None
        if not os.path.lexists(out):
            os.rename(staging, out)
        elif _exchange(staging, out):
            _remove(staging)
        else:
            old = self._sibling("old")
            os.rename(out, old)
            os.rename(staging, out)
            _remove(old)
        self.staging = None
        _fsync_dir(out.parent)

    def _discard(self) -> None:
        if self.staging is not None:
            _remove(self.staging)
            self.staging = None
        self._unlock()


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
