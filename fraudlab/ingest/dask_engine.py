"""Dask path of ingest: many files read and validated in parallel on a Dask cluster, loaded through Parquet.

The driver plans the load exactly as the DuckDB path does (inspect every file, detect or check the mapping on a
sample, decide which extra columns are numbers). A `dask.dataframe` built with `from_map` then has one partition per
file: each worker reads its file with DuckDB and applies the *same* SQL typing and row checks as
`fraudlab.ingest` (same reasons, same raw records, same generated ids), and the partitions are written as Parquet
into a staging folder. Finally the workspace loads that Parquet in one transaction: duplicate ids (within the load
and against the workspace) are marked, good rows go to `transactions`, bad rows to `quarantine`, and the ingest is
logged with engine 'dask'.

With FRAUDLAB_DASK_SCHEDULER set the work runs on that cluster (its workers must see the source files and the
staging folder at the same paths, e.g. a shared volume); otherwise on a local cluster of worker processes.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraudlab import jobs
from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.cluster import dask_client, given, plain_main  # noqa: F401 (re-exported for callers)
from fraudlab.data_roots import DataRoots
from fraudlab.ingest.extras import EXISTING_COLUMNS_SQL, Consent, ExtrasPlan, create_extra_columns, plan_extras
from fraudlab.ingest.load import (
    build_checked,
    collect_rejects,
    earlier_mapping,
    finish_load,
    mark_duplicates,
    prepare_files,
    refuse_unreadable_key,
)
from fraudlab.ingest.records import (
    INGEST_MEMORY_LIMIT,
    TARGETS,
    IngestReport,
    SourceFile,
    no_progress,
)
from fraudlab.ingest.staging import sample_and_detect, stage_files
from fraudlab.jobs import Progress
from fraudlab.schema import ColumnMapping, check_mapping, keep_earlier, mapping_notes
from fraudlab.workspace import Workspace, quote_ident

ENGINE = "dask"


def validate_file(fidx: int, files: list[SourceFile], source_columns: list[str], mapping: dict,
                  extras: ExtrasPlan, digests: list[str], multi: bool,
                  limit: int | None = None) -> pd.DataFrame:
    """One partition: file `fidx` read, typed and checked with the DuckDB path's rules (runs on a worker).

    Returns typed canonical and consented extra columns, kept-aside values (__s_i), plus __fidx, __row, __reason ('' when good), __raw (the record as read,
    for bad rows) and __rej (a line the CSV reader could not split into columns).
    """
    source = files[fidx]
    con = duckdb.connect()
    try:
        cur = con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        staged = stage_files(cur, [source], sample_rows=limit, allow_empty=True)
        staged.digests = [digests[fidx]]
        missing = [c for c in source_columns if c not in staged.columns]
        if missing:  # files of one glob may lack columns others have: NULL, as the DuckDB path's UNION BY NAME
            nulls = ", ".join(f"NULL::VARCHAR AS {quote_ident(c)}" for c in missing)
            staged.sql = f"(SELECT *, {nulls} FROM {staged.sql})"
            staged.types.update({c: "VARCHAR" for c in missing})
        staged.columns = list(source_columns)
        plan = ColumnMapping.from_dict(mapping)
        collect_rejects(cur, staged, fidx=fidx, mapped_card=plan.columns.get("card_id"))
        build_checked(cur, staged, plan, extras,
                       file_names=[str(source.path)] if multi else None)
        names = ", ".join([quote_ident(c) for c in list(TARGETS) + [name for name, _ in extras.widen.values()]]
                          + [f"__s_{k}" for k in range(len(extras.side))])
        table = cur.sql(f"""
            SELECT {names}, CAST({int(fidx)} AS INTEGER) AS __fidx, CAST(__row AS BIGINT) AS __row,
                   __reason, __raw, false AS __rej FROM _checked
            UNION ALL BY NAME
            SELECT __fidx, __row, __reason, __raw, true AS __rej FROM _rejects
        """).to_arrow_table()
    finally:
        con.close()
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _write_part(part: pd.DataFrame, folder: str, k: int) -> tuple[int, int]:
    """Write one validated partition as Parquet; return (rows, quarantined rows)."""
    table = pa.Table.from_pandas(part, preserve_index=False)
    pq.write_table(table, os.path.join(folder, f"part-{k:06d}.parquet"))
    bad = int((part["__rej"] | (part["__reason"] != "")).sum()) if len(part) else 0
    return len(part), bad


def _plan(ws: Workspace, files: list[SourceFile], mapping: ColumnMapping | None, keep_columns: Consent
          ) -> tuple[ColumnMapping, list[str], ExtrasPlan, list[str]]:
    """On the driver: the columns of all files, the mapping (given or detected on a sample) and where the unmapped
    columns go (as the DuckDB path decides it)."""
    existing = {str(k): str(v) for k, v in ws.df(EXISTING_COLUMNS_SQL).values.tolist()}
    con = duckdb.connect()
    try:
        cur = con.cursor()
        asked = mapping
        staged, profiles, mapping = sample_and_detect(cur, files, mapping)
        if asked is None:  # a later file of an earlier load's layout keeps its mapping (as the DuckDB path does)
            ws_cur = ws.cursor()
            try:
                mapping = keep_earlier(mapping, earlier_mapping(ws_cur), staged.columns)
            finally:
                ws_cur.close()
        check_mapping(mapping, staged.columns)
        plan = plan_extras(cur, staged, mapping, keep_columns, existing)
        notes = list(mapping_notes(mapping, list(staged.columns), profiles)) + list(plan.notes)
    finally:
        con.close()
    return mapping, list(staged.columns), plan, notes


@jobs.as_job('the load')
def ingest_path_dask(ws: Workspace, path_or_glob: str | Path, mapping: ColumnMapping | None = None,
                     progress: Progress | None = None, *, client=None, source: str | None = None,
                     staging_dir: str | Path | None = None, who: Actor = SYSTEM,
                     roots: DataRoots | None = None, keep_columns: Consent = None) -> IngestReport:
    """Like `fraudlab.ingest.ingest_path`, with reading and validation done per file on a Dask cluster.

    `keep_columns`: unmapped source columns to add to `transactions` (the rest are kept aside), as `ingest_path`.

    `client`: a distributed.Client to use (default: FRAUDLAB_DASK_SCHEDULER or a local cluster started for this load).
    `staging_dir`: where validated Parquet is written (default: next to the workspace file); removed afterwards.
    `roots`: the data folders the paths must lie in (default FRAUDLAB_DATA_ROOTS; the CLI passes `ANYWHERE`).
    """
    import dask
    import dask.dataframe as dd
    from distributed import as_completed

    progress = progress or no_progress
    started = time.perf_counter()
    files, digests, sha, label, done = prepare_files(ws, path_or_glob, progress, source, roots)
    if done is not None:
        return done
    progress(0.05, "detecting the mapping on a sample")
    mapping, columns, extras, notes = _plan(ws, files, mapping, keep_columns)
    # not `columns=`: dask.dataframe.from_map takes that keyword as a column projection of the result
    kwargs = dict(files=files, source_columns=columns, mapping=mapping.to_dict(), extras=extras, digests=digests,
                  multi=len(files) > 1)
    meta = validate_file(0, limit=10, **kwargs).iloc[:0]
    base = Path(staging_dir) if staging_dir is not None else ws.path.parent / f".{ws.path.stem}_dask_staging"
    folder = base / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        frame = dd.from_map(validate_file, range(len(files)), meta=meta, label="fraudlab-validate", **kwargs)
        writes = [dask.delayed(_write_part)(part, str(folder), k) for k, part in enumerate(frame.to_delayed())]
        with (given(client) if client is not None else dask_client()) as active:
            futures = active.compute(writes)
            for k, future in enumerate(as_completed(futures), start=1):
                future.result()  # re-raises a worker's IngestError here, before anything is written
                progress(0.1 + 0.7 * k / len(futures), f"validated {k} of {len(futures)} file(s)")
        progress(0.85, "loading validated Parquet into the workspace")
        report = _load_staged(ws, folder, label, sha, mapping, extras, len(files), started, who)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    progress(1.0, "done")
    return replace(report, notes=tuple(notes) + report.notes)


def _load_staged(ws: Workspace, folder: Path, label: str, sha: str, mapping: ColumnMapping,
                 extras: ExtrasPlan, n_files: int, started: float, who: Actor = SYSTEM
                 ) -> IngestReport:
    """One workspace transaction: staged Parquet -> duplicate checks -> transactions / quarantine / ingests."""
    parts = str(folder / "*.parquet")
    with ws.memory_capped(INGEST_MEMORY_LIMIT), ws.write("ingest", who, details={"source": label, "engine": ENGINE, "files": n_files}) as cur:
        cur.execute("SET TimeZone = 'UTC'")
        create_extra_columns(cur, extras.widen)
        cur.execute("CREATE TEMP TABLE _checked AS SELECT * EXCLUDE (__rej) FROM read_parquet($p) WHERE NOT __rej",
                    {"p": parts})
        cur.execute("CREATE TEMP TABLE _rejects AS SELECT __fidx, __row, __raw, __reason FROM read_parquet($p) "
                    "WHERE __rej", {"p": parts})
        refuse_unreadable_key(cur, mapping, label)
        mark_duplicates(cur, extras)
        ingest_id = int(cur.execute("SELECT nextval('ingest_seq')").fetchone()[0])
        return finish_load(cur, ingest_id, label, sha, mapping, extras, started, ENGINE, n_files)
