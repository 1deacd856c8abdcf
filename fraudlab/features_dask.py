"""The same point-in-time features, computed on a Dask cluster: for teams with more data than one machine.

Every window partitions on one key (customer, device, IP, card, merchant), so shuffling the rows by that key
and running the very same DuckDB window SQL inside each Dask partition gives exactly the single-machine result.
Each group's output lands as Parquet; the workspace then joins the groups into its `features` table.
With FRAUDLAB_DASK_SCHEDULER set, the work runs on that scheduler (workers must see the same folder);
otherwise on a local cluster.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import dask.dataframe as dd
import duckdb
import pyarrow.parquet as pq
from distributed import Client

from fraudlab import jobs
from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.cluster import dask_client, given
from fraudlab.features import (
    DEFAULT_LABEL_DELAY_DAYS,
    FeaturePlan,
    FeatureReport,
    assemble_sql,
    base_sql,
    group_sql,
    merchant_fraud_sql,
    plan_features,
    store_features,
)
from fraudlab.jobs import Progress
from fraudlab.workspace import Workspace

ROWS_PER_PARTITION = 250_000


def _run_group(frame, sql: str, out_dir: str, setup: str = "", partition_info=None) -> int:
    """Inside a Dask partition: run one group's SQL over the rows with DuckDB and write the result as Parquet."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; SET threads = 1")
    con.register("_base", frame)
    if setup:
        con.execute(setup)
    table = con.sql(sql).to_arrow_table()
    number = partition_info["number"] if partition_info else 0
    pq.write_table(table, f"{out_dir}/part-{number:05d}.parquet")
    con.close()
    return table.num_rows


def _needed(columns: list[str], sql: str) -> list[str]:
    """The base columns a group's SQL mentions (plus its id and time), so each shuffle moves only those."""
    used = [c for c in columns if re.search(rf"\b{re.escape(c)}\b", sql)]
    return list(dict.fromkeys(["transaction_id", "ts", "ts_s"] + used))


def _groups(plan: FeaturePlan) -> dict[str, tuple[str | None, str, str]]:
    """group -> (shuffle key or None, SQL, setup SQL) for every feature group of the plan."""
    groups = {"row": (None, group_sql(plan, "row"), "")}
    for key in list(plan.by_key) + list(plan.shared):
        groups[key] = (key, group_sql(plan, key), "")
    if plan.has_merchant:
        groups["merchant_fraud"] = ("merchant_id", "SELECT * FROM _mfraud", merchant_fraud_sql(plan.label_delay_s))
    return groups


@jobs.as_job('the feature build')
def build_features_dask(ws: Workspace, label_delay_days: float = DEFAULT_LABEL_DELAY_DAYS,
                        client: Client | None = None, work_dir: str | Path | None = None,
                        progress: Progress | None = None, who: Actor = SYSTEM) -> FeatureReport:
    """Compute the features table through Dask (same SQL per key-partition as build_features); return the report."""
    progress = progress or (lambda _f, _m: None)
    began = time.perf_counter()
    plan = plan_features(ws, label_delay_days)
    work = Path(work_dir or tempfile.mkdtemp(prefix="fraudlab-features-", dir=ws.path.parent))
    shutil.rmtree(work, ignore_errors=True)
    (work / "base").mkdir(parents=True)
    progress(0.05, "exporting transactions for the cluster")
    rows = ws.count("transactions")
    per_file = ROWS_PER_PARTITION
    cur = ws.cursor()
    try:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(f"COPY ({base_sql(label_delay_days)}) TO '{work / 'base'}' "
                    f"(FORMAT PARQUET, FILE_SIZE_BYTES '32MB', ROW_GROUP_SIZE {per_file})")
        columns = [r[0] for r in cur.execute(f"SELECT * FROM ({base_sql(label_delay_days)}) LIMIT 0").description]
    finally:
        cur.close()
    partitions = max(int(rows // ROWS_PER_PARTITION) + 1, 2)
    groups = _groups(plan)
    with (given(client) if client else dask_client()) as cl:
        for i, (group, (key, sql, setup)) in enumerate(groups.items()):
            progress(0.1 + 0.7 * i / len(groups), f"dask: {group} features")
            out = work / f"g_{group}"
            out.mkdir()
            frame = dd.read_parquet(str(work / "base"), columns=_needed(columns, sql + setup),
                                    split_row_groups=True)
            if key is not None:
                frame = frame.shuffle(on=key, npartitions=partitions)
            counts = frame.map_partitions(_run_group, sql, str(out), setup, meta=(None, "int64"))
            cl.compute(counts.sum()).result()
    progress(0.85, "joining the groups in the workspace")
    parts = {g: f"_d_{g}" for g in groups}
    views = ", ".join(f"_d_{g} AS (SELECT * FROM read_parquet('{work / f'g_{g}'}/*.parquet'))" for g in groups)
    with ws.write("build_features", who, {"label_delay_days": label_delay_days, "engine": "dask"}) as wcur:
        numeric, categorical = store_features(wcur, plan, f"WITH {views} {assemble_sql(plan, parts, by_time=True)}",
                                              label_delay_days)
    shutil.rmtree(work, ignore_errors=True)
    progress(1.0, "features ready")
    return FeatureReport(ws.count("features"), numeric, categorical, plan.excluded, plan.skipped,
                         time.perf_counter() - began, label_delay_days)
