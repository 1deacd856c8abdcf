"""Files: resolve paths and globs, recognise the format and encoding, hash the content."""
from __future__ import annotations

import codecs
import glob as globlib
import gzip
import hashlib
import os
import tempfile
import zlib
from pathlib import Path

from fraudlab.data_roots import DataRoots, configured_roots, resolve_in_roots
from fraudlab.errors import IngestError
from fraudlab.ingest.records import HEAD_BYTES, MAX_GLOB_DEPTH, MAX_GLOB_FILES, SourceFile

UPLOAD_PREFIX = "fraudlab_upload_"


class UploadedPath(type(Path())):  # type: ignore[misc]
    """A file `save_upload` wrote from a browser upload: read from its temporary folder, not from a data folder."""


def upload_folder(path: str | Path) -> bool:
    """Whether a file sits directly in one of save_upload's own temporary folders (links resolved)."""
    parent = Path(os.path.realpath(path)).parent
    return parent.parent == Path(tempfile.gettempdir()).resolve() and parent.name.startswith(UPLOAD_PREFIX)


def resolve_paths(path_or_glob: str | Path, roots: DataRoots | None = None) -> list[Path]:
    """Expand a path or glob into readable files, or raise IngestError naming what was asked for and why.

    Only inside the data folders (`roots`, by default FRAUDLAB_DATA_ROOTS; a relative path starts in the first),
    except an `UploadedPath` in its upload folder; `roots=ANYWHERE` (the operator's command line) reads any path.
    """
    text = str(path_or_glob).strip()
    if not text:
        raise IngestError("no path given")
    roots = configured_roots() if roots is None else roots
    if roots.unrestricted:
        paths = _anywhere(text)
    elif isinstance(path_or_glob, UploadedPath) and upload_folder(path_or_glob) and not path_or_glob.is_symlink():
        if not path_or_glob.is_file():
            raise IngestError(f"{path_or_glob.name}: the uploaded file is gone; upload it again")
        paths = [Path(os.path.realpath(path_or_glob))]
    else:
        paths = resolve_in_roots(text, roots, MAX_GLOB_FILES, MAX_GLOB_DEPTH)
    for path in paths:
        if not os.access(path, os.R_OK):
            raise IngestError(f"{path}: permission denied (the file cannot be read)")
    return paths


def source_mtime(path_or_glob: str | Path, roots: DataRoots | None = None) -> float:
    """Modification time of a single allowed file; 0 for a glob or a path that is refused or missing."""
    if any(ch in str(path_or_glob) for ch in "*?["):
        return 0.0
    try:
        return max(p.stat().st_mtime for p in resolve_paths(path_or_glob, roots))
    except (IngestError, OSError):
        return 0.0


def _anywhere(text: str) -> list[Path]:
    """Any path or glob the process can read (`~` expanded): for the operator only."""
    if "\x00" in text:
        raise IngestError("the path holds a NUL byte")
    if any(ch in text for ch in "*?["):
        paths = sorted(_bounded_glob(os.path.expanduser(text)))
        if not paths:
            raise IngestError(f"{text}: no files match this pattern")
    else:
        path = Path(os.path.expanduser(text))
        if not path.exists():
            raise IngestError(f"{text}: no such file")
        if path.is_dir():
            raise IngestError(f"{text}: is a folder; to load every file in it use a glob such as '{text}/*.csv'")
        paths = [path]
    return paths


def _bounded_glob(pattern: str) -> list[Path]:
    """Files matching a glob; IngestError beyond MAX_GLOB_FILES files or MAX_GLOB_DEPTH folders below the first
    wildcard (the walk stops there, so a pattern over a huge tree cannot run for long)."""
    parts = pattern.split(os.sep)
    first = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    if "**" not in parts[first:] and len(parts) - first - 1 > MAX_GLOB_DEPTH:
        raise IngestError(f"{pattern}: reaches {len(parts) - first - 1} folder levels below its first wildcard; "
                          f"at most {MAX_GLOB_DEPTH} are searched")
    found = []
    for match in globlib.iglob(pattern, recursive=True):
        depth = len(match.split(os.sep)) - first - 1
        if depth > MAX_GLOB_DEPTH:
            raise IngestError(f"{pattern}: matches {match}, {depth} folder levels below the first wildcard; at most "
                              f"{MAX_GLOB_DEPTH} are searched: use a narrower pattern")
        if os.path.isfile(match):
            found.append(Path(match))
            if len(found) > MAX_GLOB_FILES:
                raise IngestError(f"{pattern}: matches more than {MAX_GLOB_FILES:,} files; load them in smaller "
                                  "groups (a narrower pattern)")
    return found


def inspect_file(path: Path) -> SourceFile:
    """Decide how to read a file from its first bytes; raise IngestError for empty, binary or archive files."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise IngestError(f"{path}: cannot be opened ({exc.strerror or exc})") from exc
    if not head:
        raise IngestError(f"{path}: the file is empty (0 bytes)")
    if head[:4] == b"PAR1":
        return SourceFile(path, "parquet")
    if head[:4] == b"PK\x03\x04":
        raise IngestError(f"{path}: is a ZIP archive or an Excel workbook, not CSV or Parquet; "
                          "unzip it or save the sheet as CSV first")
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return SourceFile(path, "csv", compression="zstd")
    compression = "none"
    if head[:2] == b"\x1f\x8b":
        compression, head = "gzip", _gunzip_head(path)
        if not head:
            raise IngestError(f"{path}: the gzip file holds no data")
    return SourceFile(path, "csv", compression, _text_encoding(path, head))


def _gunzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
            if len(head) < HEAD_BYTES:
                handle.read()  # a small file is read to its end so a truncated stream is caught here
            return head
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path}: is a damaged gzip file ({exc})") from exc


def _text_encoding(path: Path, head: bytes) -> str:
    """utf-8 (with or without BOM), utf-16 (by BOM) or latin-1; raise for binary content."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    # a stray NUL in a text file quarantines its row (rules.row_reasons); many control bytes mean binary data
    control = sum(head.count(bytes([b])) for b in range(32) if b not in (9, 10, 13))
    if control > 0.01 * len(head):
        raise IngestError(f"{path}: is not a text (CSV) file: it holds binary data. Load CSV (optionally "
                          "gzip'd) or Parquet files")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "latin-1"


def digest_and_nul(paths: list[Path]) -> tuple[str, bool]:
    """The files' digest (:func:`combined` of each file's sha256, as `workspace.file_sha256` hashes it) and whether
    any of their bytes is NUL, from one read: a plain-text CSV without a NUL byte needs no NUL test per value."""
    digests, nul = [], False
    for path in paths:
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                sha.update(block)
                nul = nul or b"\x00" in block
        digests.append(sha.hexdigest())
    return combined(digests), nul


def plain_text(files: list[SourceFile]) -> bool:
    """Whether every file is an uncompressed CSV in a byte-per-ASCII encoding, where a NUL value is a NUL byte."""
    return all(f.kind == "csv" and f.compression == "none" and f.encoding in ("utf-8", "latin-1") for f in files)


def combined(digests: list[str]) -> str:
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()
