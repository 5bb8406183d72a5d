"""Output folders and files: written all at once, and never at the cost of a user's files.

A compile writes its artefacts into a fresh hidden sibling folder and renames it into place only
when everything is written, so a failed or interrupted compile leaves the previous output (or
nothing) behind. Before any work starts, ``check`` decides whether the folder may be written:

* a folder that does not exist, or an empty one, may;
* a folder that snn-deploy wrote may be replaced: it holds ``manifest.json`` (``MANIFEST``)
  naming every file in it, and nothing else;
* any other folder or a file is refused unless ``force``; the current directory, its ancestors,
  the home directory and any folder holding a file the compile reads (the model, the inputs,
  the target file) are refused even then; so is a symbolic link, which is never followed.

The replaced folder keeps its permission bits; a new one gets the ordinary ``0o777 & ~umask``.

Single output files (``simulate -o run.npz``, ``convert -o snn.nir``) follow the same rules
through ``check_file`` and ``write_file``: an existing file is replaced only with ``force``, a
file this run reads never, and the new file appears whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from snn_deploy import __version__
from snn_deploy.errors import InputFileError, UsageError

MANIFEST = "manifest.json"


def check(out: str | Path, *, reads: Iterable[str | Path] = (), force: bool = False) -> Path:
    """Return the absolute output folder, or raise if writing it could destroy a user's files.

    Args:
        out: the folder asked for (``-o``).
        reads: the files this run reads; no folder holding one of them is ever replaced.
        force: replace an existing folder that snn-deploy did not write.

    Raises:
        UsageError: an empty path.
        InputFileError: the folder may not be written (the message says why and what to do).
    """
    if str(out).strip() == "":
        raise UsageError("the output folder is an empty path; give a folder name with -o")
    path = Path(os.path.abspath(out))  # `x/..` is resolved by name, links are not followed
    if path.is_symlink():
        raise InputFileError(
            f"output {out} is a symbolic link; snn-deploy does not write through links: "
            "give the real folder"
        )
    real = path.resolve()
    protected = {Path.cwd().resolve(): "the current directory", Path.home().resolve(): "home"}
    protected.update(
        {Path(f).resolve().parent: f"the folder of {f}, which this run reads" for f in reads}
    )
    for keep, what in protected.items():
        if real == keep or real in keep.parents:
            raise InputFileError(
                f"output {out} is or holds {what} ({keep}), which is never replaced; "
                "choose a new folder with -o"
            )
    if real.exists() and not real.is_dir():
        raise InputFileError(f"output {out} is a file, not a folder; choose a folder with -o")
    foreign = _foreign_entries(real)
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise InputFileError(
            f"output {out} exists and holds files snn-deploy did not write ({shown}); "
            "choose a new folder with -o, or pass --force to replace it"
        )
    return real


def write(out: Path, emit: Callable[[Path], Sequence[Path]], *, force: bool = False) -> list[Path]:
    """Call ``emit(tmp)`` on a fresh sibling folder, add ``manifest.json``, swap it into ``out``.

    ``out`` must have passed ``check`` (it is checked again here, just before the swap). On any
    failure, an interruption included, the temporary folder and any parent folder this call
    created are removed and an existing ``out`` is left as it was.
    """
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        _remove_empty(created)
        raise InputFileError(f"cannot write to {out.parent}: {exc.strerror or exc}") from exc
    try:
        os.chmod(tmp, out.stat().st_mode & 0o7777 if out.is_dir() else 0o777 & ~_umask())
        files = list(emit(tmp))
        manifest = {
            "written_by": f"snn-deploy {__version__}",
            "files": sorted(f.relative_to(tmp).as_posix() for f in files),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        files.append(tmp / MANIFEST)
        check(out, force=force)  # it may have changed while the compile ran
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(old)  # onto an empty folder of our own: atomic, no name reused
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise InputFileError(f"cannot write {out}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise
    return [out / f.relative_to(tmp) for f in files]


def _foreign_entries(folder: Path) -> list[str]:
    """The names in ``folder`` that its manifest does not list (all of them without one)."""
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir())
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
        ours = {MANIFEST, *(str(f).split("/")[0] for f in listed)}
    except (OSError, ValueError, KeyError, TypeError):
        ours = set()
    return [n for n in names if n not in ours]


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_file(
    out: str | Path,
    *,
    suffix: str,
    reads: Iterable[str | Path] = (),
    force: bool = False,
    option: str = "-o",
) -> Path:
    """Return the absolute output file, or raise if writing it could destroy a user's file.

    ``option`` names the option that gave ``out`` in the messages.

    Raises:
        UsageError: a name without ``suffix``.
        InputFileError: a folder, a symbolic link, a file this run reads, or an existing file
            without ``force``.
    """
    path = Path(os.path.abspath(out))
    if path.suffix != suffix:
        raise UsageError(f"{option} {out}: give a file name ending in {suffix}")
    if path.is_dir() or path.is_symlink():
        raise InputFileError(f"{option} {out} is a folder or a symbolic link; give a new file name")
    if any(path == Path(f).resolve() for f in reads):
        raise InputFileError(f"{option} {out} is a file this run reads; give a new file name")
    if path.exists() and not force:
        raise InputFileError(f"{option} {out} exists; pass --force to replace it")
    return path


def write_file(out: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``out`` (same suffix), then rename it over
    ``out``; on any failure the temporary file goes and an existing ``out`` is left as it was."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    except OSError as exc:
        raise InputFileError(f"cannot write {out}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputFileError(f"cannot write {out}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
