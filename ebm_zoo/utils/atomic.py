"""Atomic files and directories: a reader sees the old version or the new one, never a torn one.

Every file is written under a temporary name in its own directory, flushed to disk, and renamed
into place with `os.replace` (atomic on POSIX within one file system). A temporary carries the
writer's pid, `.tmp-<pid>-<token>.<final name>`, so `clean_stale(directory)` on the next run
removes the leftovers of a killed writer and never those of a live one.

    from ebm_zoo.utils import atomic
    atomic.write_json(path, obj)
    with atomic.file(workdir / "model.weights.h5") as tmp:   # tmp keeps the final name's suffix
        model.save_weights(str(tmp))
    tmp = atomic.temp_dir(dest); ...fill tmp...; atomic.publish_dir(tmp, dest, overwrite=False)

Fault injection for tests: with `EBM_ZOO_PAUSE_BEFORE_REPLACE=<final file name>` set, a writer
of that name touches `<tmp>.paused` and sleeps before the rename, so a test can SIGKILL it
deterministically in the middle of the write.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

from ebm_zoo.utils.checks import EbmZooError

TEMP_PREFIX = ".tmp-"
PAUSE_ENV = "EBM_ZOO_PAUSE_BEFORE_REPLACE"


def temp_name(final: str | os.PathLike) -> Path:
    """A fresh temporary path next to `final` (same directory, ends with its name)."""
    final = Path(final)
    return final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.{final.name}")


def _owner_pid(name: str) -> int | None:
    if not name.startswith(TEMP_PREFIX):
        return None
    head = name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(directory: str | os.PathLike) -> list[str]:
    """Removes temporaries in `directory` whose writer is no longer running; returns their names."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        pid = _owner_pid(entry.name)
        if pid is None or _alive(pid):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry.name)
    return removed


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _maybe_pause(tmp: Path, final: Path) -> None:
    if os.environ.get(PAUSE_ENV) == final.name:
        Path(f"{tmp}.paused").write_text(str(os.getpid()))
        time.sleep(3600)


@contextlib.contextmanager
def file(path: str | os.PathLike):
    """Yields a temporary path; on success it is fsynced and renamed to `path`, else removed."""
    final = Path(path)
    if not final.parent.is_dir():
        raise EbmZooError(f"Cannot write {final}: directory {final.parent} does not exist.")
    tmp = temp_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise EbmZooError(f"Writing {final} produced no file.")
        _fsync_file(tmp)
        _maybe_pause(tmp, final)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()
        with contextlib.suppress(FileNotFoundError):
            Path(f"{tmp}.paused").unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    kwargs.setdefault("indent", 2)
    return write_text(path, json.dumps(obj, **kwargs))


def temp_dir(dest: str | os.PathLike) -> Path:
    """A fresh empty temporary directory next to `dest` (mode 0o755), to fill and then publish."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    tmp.mkdir(mode=0o755)
    return tmp


def publish_dir(tmp: str | os.PathLike, dest: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Moves the filled directory `tmp` to `dest`.

    A missing `dest` is created by one rename. An existing `dest` is replaced only with
    `overwrite=True`: it is first renamed aside (a temporary of this process), the new one is
    renamed in, and then the old one is deleted; a crash in between leaves either the old or
    the new directory at `dest` plus a temporary that `clean_stale` removes.
    """
    tmp, dest = Path(tmp), Path(dest)
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise EbmZooError(f"{dest} already exists; pass --overwrite (overwrite=True) to replace it.")
        if not dest.is_dir() or dest.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
            raise EbmZooError(f"{dest} exists and is not a directory; refusing to replace it.")
        old = temp_name(dest)
        os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except OSError:
            os.rename(old, dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, dest)
    _fsync_dir(dest.parent)
    return dest


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """`write_bytes` that also creates the parent directory; returns the path as a str."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return str(write_bytes(path, data))


def atomic_write_text(path: str | os.PathLike, text: str) -> str:
    """`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))
