"""Settings read once from the environment, so nothing else touches os.environ."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DATA_DIR = PROJECT_DIR / "data"
SAMPLE_PATH = DATA_DIR / "sample_transactions.parquet"


@dataclass(frozen=True)
class Config:
    """Where the workspace lives and which Dask scheduler (if any) to use."""

    workspace_path: Path
    dask_scheduler: str | None
    models_dir: Path
    late_horizon_hours: float = 24.0  # a row later than its customer's newest by more than this is 'beyond horizon'
    live_durability: str = "disk"  # live answers wait for the log's fsync ('disk') or only for its write ('process')


def load_config() -> Config:
    """Read FRAUDLAB_* environment variables into a Config."""
    workspace = Path(os.environ.get("FRAUDLAB_WORKSPACE", str(DATA_DIR / "workspace.duckdb")))
    models = Path(os.environ.get("FRAUDLAB_MODELS_DIR", str(workspace.parent / (workspace.stem + "_models"))))
    return Config(
        workspace_path=workspace,
        dask_scheduler=os.environ.get("FRAUDLAB_DASK_SCHEDULER") or None,
        models_dir=models,
        late_horizon_hours=float(os.environ.get("FRAUDLAB_LATE_HORIZON_HOURS", "24")),
        live_durability=live_durability(os.environ.get("FRAUDLAB_LIVE_DURABILITY", "disk")),
    )


DURABILITY = ("disk", "process")  # what a live answer waits for: its log line fsync'ed (a power loss keeps it) / written
# to the operating system, the fsync right after (a crash of the server keeps it, a crash of the machine may not)


def live_durability(value: str) -> str:
    """FRAUDLAB_LIVE_DURABILITY checked: 'disk' (the default) or 'process'."""
    value = value.strip().lower()
    if value not in DURABILITY:
        raise ValueError(f"FRAUDLAB_LIVE_DURABILITY must be one of {', '.join(DURABILITY)}, not {value!r}")
    return value


def data_roots_setting() -> list[str]:
    """The data folders as configured: FRAUDLAB_DATA_ROOTS (os.pathsep-separated), else the project's data/."""
    folders = [part.strip() for part in os.environ.get("FRAUDLAB_DATA_ROOTS", "").split(os.pathsep)]
    return [part for part in folders if part] or [str(DATA_DIR)]
