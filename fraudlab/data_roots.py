"""Data folders: the only places server paths typed in the browser may be read from (`FRAUDLAB_DATA_ROOTS`).

`resolve_in_roots` turns a typed path or glob into files and refuses, with one message that never says whether
anything exists, every path that leaves the folders: `..`, `~`, absolute paths elsewhere, symbolic links (every
folder entered and every match is checked after the links are resolved), NUL bytes. A glob is expanded by a walk
that starts inside a data folder and never enters a folder outside them, bounded in files and depth.
The operator's command line is not restricted (`ANYWHERE`): whoever runs it can read those files anyway.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from fraudlab.config import data_roots_setting
from fraudlab.errors import IngestError

MAGIC = "*?["


class OutsideDataRoots(IngestError):
    """A server path or glob leads outside the data folders; the message does not say whether it exists."""


@dataclass(frozen=True)
class DataRoots:
    """Folders server paths may be read from: as configured (for messages), absolute, and with links resolved."""

    configured: tuple[str, ...]
    absolute: tuple[str, ...]
    resolved: tuple[str, ...]
    unrestricted: bool = False

    def describe(self) -> str:
        """The folders in plain words, as configured."""
        return "any path (operator)" if self.unrestricted else ", ".join(self.configured)

    def refusal(self) -> OutsideDataRoots:
        """The one refusal for every path outside the folders (it names the folders, never the path)."""
        return OutsideDataRoots("Only files inside the data folders can be loaded from the server: "
                                f"{self.describe()}. Put the file in one of them (the administrator sets them "
                                "with FRAUDLAB_DATA_ROOTS) or upload it.")

    def contains(self, path: str, *, lexical: bool = False) -> bool:
        """Whether an absolute path lies in (or is) one of the folders; `lexical` also accepts the folders as typed."""
        folders = self.resolved + (self.absolute if lexical else ())
        return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in folders)


ANYWHERE = DataRoots((), (), (), unrestricted=True)


def roots_from(folders: Sequence[str | Path]) -> DataRoots:
    """DataRoots for these folders (relative ones are taken from the current folder)."""
    configured = tuple(str(f) for f in folders)
    if not configured:
        raise ValueError("at least one data folder is needed")
    absolute = tuple(os.path.normpath(os.path.abspath(f)) for f in configured)
    return DataRoots(configured, absolute, tuple(os.path.realpath(f) for f in absolute))


def configured_roots() -> DataRoots:
    """The data folders from FRAUDLAB_DATA_ROOTS (os.pathsep-separated), by default the project's `data/`."""
    return roots_from(data_roots_setting())


def resolve_in_roots(text: str, roots: DataRoots, max_files: int, max_depth: int) -> list[Path]:
    """Files (links resolved) a path or glob names inside the folders; a relative path starts in the first folder.

    Raises the folders' refusal for anything leading outside them, IngestError for what is wrong inside them."""
    if "\x00" in text or text.startswith("~"):
        raise roots.refusal()
    full = os.path.normpath(os.path.join(roots.absolute[0], text))  # an absolute `text` replaces the folder
    parts = full.split(os.sep)
    first = next((i for i, part in enumerate(parts) if any(ch in part for ch in MAGIC)), None)
    prefix = os.sep.join(parts[:first]) or os.sep if first is not None else full
    # outside the folders as typed is refused before anything there is looked at; then links are resolved
    if not roots.contains(prefix, lexical=True):
        raise roots.refusal()
    real = os.path.realpath(prefix)
    if not roots.contains(real):
        raise roots.refusal()
    if first is None:
        if not os.path.exists(real):
            raise IngestError(f"{text}: no such file")
        if os.path.isdir(real):
            raise IngestError(f"{text}: is a folder; to load every file in it use a glob such as '{text}/*.csv'")
        return [Path(real)]
    rest = [part for part in parts[first:] if part not in ("", ".")]
    if ".." in rest:
        raise roots.refusal()
    if rest[-1] == "**":
        rest.append("*")
    if "**" not in rest and len(rest) - 1 > max_depth:
        raise IngestError(f"{text}: reaches {len(rest) - 1} folder levels below its first wildcard; "
                          f"at most {max_depth} are searched")
    found = sorted(_Walk(text, roots, rest, max_files, max_depth).run(real))
    if not found:
        raise IngestError(f"{text}: no files match this pattern")
    return [Path(p) for p in found]


class _Walk:
    """A glob expanded folder by folder from a resolved start; every folder entered and file matched is checked."""

    def __init__(self, text: str, roots: DataRoots, parts: list[str], max_files: int, max_depth: int) -> None:
        self.text, self.roots, self.parts = text, roots, parts
        self.max_files, self.max_depth = max_files, max_depth
        self.found: set[str] = set()

    def run(self, start: str) -> set[str]:
        if os.path.isdir(start):
            self._visit(start, 0, 0)
        return self.found

    def _inside(self, path: str) -> str:
        if not os.path.islink(path):  # its folder is already resolved and checked, and it is no `..`
            return path
        real = os.path.realpath(path)
        if not self.roots.contains(real):
            raise self.roots.refusal()
        return real

    def _visit(self, folder: str, depth: int, i: int) -> None:
        part, last = self.parts[i], i == len(self.parts) - 1
        if part == "**":
            self._visit(folder, depth, i + 1)  # `**` matches no folder, or any number of them
            for name in _names(folder, "*", dirs_only=True):
                if depth + 1 > self.max_depth:
                    raise IngestError(f"{self.text}: has folders {depth + 1} folder levels below the first wildcard "
                                      f"(in {name}); at most {self.max_depth} are searched: use a narrower pattern")
                self._visit(self._inside(os.path.join(folder, name)), depth + 1, i)
            return
        if any(ch in part for ch in MAGIC):
            names = _names(folder, part, dirs_only=not last)
        else:
            names = [part] if os.path.lexists(os.path.join(folder, part)) else []
        for name in names:
            path = self._inside(os.path.join(folder, name))
            if not last:
                if os.path.isdir(path):
                    self._visit(path, depth + 1, i + 1)
            elif os.path.isfile(path):
                self.found.add(path)
                if len(self.found) > self.max_files:
                    raise IngestError(f"{self.text}: matches more than {self.max_files:,} files; load them in "
                                      "smaller groups (a narrower pattern)")


def _names(folder: str, pattern: str, dirs_only: bool) -> list[str]:
    """Entries of a folder matching one glob part (hidden ones only for a pattern starting with '.')."""
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries
                    if fnmatch.fnmatchcase(e.name, pattern) and (pattern.startswith(".") or not e.name.startswith("."))
                    and (not dirs_only or e.is_dir())]
    except OSError:
        return []
