"""Server paths only inside the data folders (FRAUDLAB_DATA_ROOTS): escapes refused alike, legitimate files load."""
from __future__ import annotations

import importlib
import os
import re
import tomllib
from pathlib import Path

import pytest
from conftest import APP_PATH, ROOT
from people import admin
from streamlit.testing.v1 import AppTest

from fraudlab import pipeline
from fraudlab.config import DATA_DIR, SAMPLE_PATH
from fraudlab.data_roots import ANYWHERE, OutsideDataRoots, configured_roots, roots_from
from fraudlab.errors import IngestError
from fraudlab.generate import simulate
from fraudlab.ingest import UploadedPath, detect, ingest_path, preview, resolve_paths, save_upload, source_mtime
from fraudlab.ingest.records import MAX_UPLOAD_BYTES

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def tx_csv() -> bytes:
    """200 simulated transactions as CSV bytes."""
    return simulate(rows=200, seed=11, days=10).transactions.to_csv(index=False).encode()


@pytest.fixture()
def tree(tmp_path, monkeypatch, tx_csv):
    """A data folder `root` (the only one configured) beside a folder `outside` holding a secret CSV, with links
    from inside the root to outside it, to an existing and to a missing target."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub" / "deeper").mkdir(parents=True)
    outside.mkdir()
    (root / "tx.csv").write_bytes(tx_csv)
    (root / "sub" / "deeper" / "more.csv").write_bytes(tx_csv.replace(b"\nT", b"\nS"))
    (outside / "secret.csv").write_bytes(tx_csv)
    (root / "links").mkdir()
    (root / "links" / "link.csv").symlink_to(outside / "secret.csv")
    (root / "links" / "dangling.csv").symlink_to(outside / "missing.csv")
    (root / "inner_link.csv").symlink_to(root / "tx.csv")
    monkeypatch.setenv("FRAUDLAB_DATA_ROOTS", str(root))
    return root, outside


def refusal_of(root: Path) -> str:
    return str(roots_from([root]).refusal())


ESCAPES = [
    "../../etc/passwd",
    "/etc/passwd",
    "/etc/no-such-file-at-all",
    "~/.bashrc",
    "~",
    "../outside/secret.csv",
    "../outside/missing.csv",
    "sub/../../outside/secret.csv",
    "links/link.csv",
    "links/dangling.csv",
    "links/*.csv",
    "**/*.csv",
    "/**/*.csv",
    "../*",
    "../**/*.csv",
    "*/../../outside/*.csv",
    "tx.csv\x00.png",
    "/",
    "..",
]


@pytest.mark.parametrize("typed", ESCAPES)
def test_every_escape_is_refused_with_the_one_message(tree, typed):
    root, outside = tree
    absolute = str(outside) + typed[len("../outside"):] if typed.startswith("../outside") else typed
    for attempt in (typed, absolute):
        with pytest.raises(OutsideDataRoots) as refused:
            preview(attempt)
        assert str(refused.value) == refusal_of(root)
        with pytest.raises(OutsideDataRoots):
            resolve_paths(attempt)
    assert source_mtime(typed) == 0.0


def test_every_loader_refuses_before_reading_and_changes_nothing(tree, empty_ws):
    from fraudlab.ingest.dask_engine import ingest_path_dask

    root, outside = tree
    for typed in ("/etc/passwd", "../outside/secret.csv", "links/*.csv"):
        for load in (ingest_path, lambda ws, p: pipeline.load(ws, p, who=admin()), ingest_path_dask,
                     lambda ws, p: pipeline.load(ws, p, engine="dask", who=admin())):
            with pytest.raises(OutsideDataRoots, match="^" + re.escape(refusal_of(root)) + "$"):
                load(empty_ws, typed)
    assert empty_ws.scalar("SELECT count(*) FROM transactions") == 0
    assert empty_ws.scalar("SELECT count(*) FROM ingests") == 0


def test_the_message_does_not_reveal_what_exists_and_names_the_folders(tree):
    root, outside = tree
    messages = set()
    for typed in (str(outside / "secret.csv"), str(outside / "missing.csv"), "/etc/passwd", "/etc/nope",
                  "links/link.csv", "links/dangling.csv", str(outside / "*.csv"), str(outside / "*.nothing")):
        with pytest.raises(OutsideDataRoots) as refused:
            preview(typed)
        messages.add(str(refused.value))
    assert len(messages) == 1
    message = messages.pop()
    assert str(root) in message and "secret" not in message and "passwd" not in message
    assert message.startswith("Only files inside the data folders can be loaded")


def test_a_folder_link_inside_the_root_to_outside_is_never_entered(tree):
    root, outside = tree
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    for typed in ("elsewhere/secret.csv", "elsewhere/*.csv", "**/*.csv", "*/secret.csv", "elsewhere"):
        with pytest.raises(OutsideDataRoots):
            resolve_paths(typed)


def test_files_and_globs_inside_the_root_preview_and_load(tree, empty_ws):
    root, _ = tree
    for typed in ("tx.csv", str(root / "tx.csv"), "./tx.csv", "sub/../tx.csv", "inner_link.csv", " tx.csv "):
        assert resolve_paths(typed) == [root / "tx.csv"]
    pv = preview("tx.csv")
    assert len(pv.sample) == 20 and pv.files == [str(root / "tx.csv")]
    assert {"ts", "amount"} <= set(detect("tx.csv").columns)
    assert resolve_paths("*.csv") == [root / "tx.csv"]  # tx.csv and the link to it: one file
    assert resolve_paths("sub/**/*.csv") == [root / "sub" / "deeper" / "more.csv"]
    assert len(preview(str(root / "s*" / "*" / "*.csv")).sample) == 20
    assert source_mtime("tx.csv") == (root / "tx.csv").stat().st_mtime
    report = ingest_path(empty_ws, "tx.csv")
    assert report.rows_loaded == 200
    report, _ = pipeline.load(empty_ws, "sub/**/*.csv", who=admin())
    assert report.rows_loaded == 200 and empty_ws.scalar("SELECT count(*) FROM transactions") == 400


def test_inside_the_root_errors_still_say_what_is_wrong(tree):
    with pytest.raises(IngestError, match="nope.csv: no such file") as missing:
        resolve_paths("nope.csv")
    assert not isinstance(missing.value, OutsideDataRoots)
    with pytest.raises(IngestError, match="is a folder"):
        resolve_paths("sub")
    with pytest.raises(IngestError, match="no files match"):
        resolve_paths("sub/*.parquet")


def test_roots_default_to_the_project_data_folder_and_take_a_list(tmp_path, monkeypatch, tx_csv):
    monkeypatch.delenv("FRAUDLAB_DATA_ROOTS")
    assert configured_roots().configured == (str(DATA_DIR),)
    assert resolve_paths(SAMPLE_PATH.name) == [Path(os.path.realpath(SAMPLE_PATH))]
    with pytest.raises(OutsideDataRoots, match=re.escape(str(DATA_DIR))):
        resolve_paths(str(ROOT / "README.md"))
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (second / "x.csv").write_bytes(tx_csv)
    monkeypatch.setenv("FRAUDLAB_DATA_ROOTS", f"{first}{os.pathsep}{os.pathsep}{second}")
    assert configured_roots().configured == (str(first), str(second))
    assert resolve_paths(str(second / "x.csv")) == [second / "x.csv"]
    with pytest.raises(IngestError, match="no such file"):  # a relative path starts in the first folder
        resolve_paths("x.csv")
    assert "b" in configured_roots().describe() and str(first) in str(configured_roots().refusal())


def test_the_operator_command_line_reads_any_path(tree, tmp_path, capsys):
    from fraudlab.cli import main

    _, outside = tree
    assert resolve_paths(str(outside / "secret.csv"), roots=ANYWHERE) == [outside / "secret.csv"]
    assert main(["ingest", str(outside / "secret.csv"), "--workspace", str(tmp_path / "cli.duckdb")]) == 0
    assert "loaded 200 of 200 rows" in capsys.readouterr().out
    with pytest.raises(IngestError, match="NUL byte"):
        resolve_paths("a\x00b", roots=ANYWHERE)


def test_an_upload_is_read_from_its_own_folder_and_capped(tree, monkeypatch, tx_csv):
    upload = save_upload(tx_csv, "../../mine.csv")
    try:
        assert isinstance(upload, UploadedPath) and len(preview(upload).sample) == 20
        with pytest.raises(OutsideDataRoots):  # the same path typed as text is a server path like any other
            preview(str(upload))
    finally:
        upload.unlink()
        upload.parent.rmdir()
    with pytest.raises(OutsideDataRoots):  # an UploadedPath somewhere else is no upload
        resolve_paths(UploadedPath("/etc/passwd"))
    monkeypatch.setattr(importlib.import_module("fraudlab.ingest.preview"), "MAX_UPLOAD_BYTES", 100)
    with pytest.raises(IngestError, match="at most 0 MB can be uploaded. Put a larger file in a data folder"):
        save_upload(tx_csv, "big.csv")
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_BYTES >> 20


def test_pages_never_lift_the_limit():
    """Only the operator's tools may pass ANYWHERE: nothing a browser reaches does."""
    for path in [*ROOT.joinpath("pages").glob("*.py"), *ROOT.joinpath("ui").glob("*.py"), ROOT / "app.py"]:
        text = path.read_text()
        assert "ANYWHERE" not in text and "roots=" not in text and "unrestricted" not in text, path


def open_data_page() -> AppTest:
    at = AppTest.from_file(APP_PATH, default_timeout=120)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception
    return at


def test_data_page_refuses_a_path_outside_and_previews_one_inside(app_workspace, tree):
    root, outside = tree
    at = open_data_page()
    assert any(f"data folders can be read: {root}" in c.value.replace("\\", "") for c in at.caption)
    errors = []
    for typed in ("/etc/passwd", str(outside / "secret.csv"), str(outside / "missing.csv"), "../*", "links/link.csv"):
        at.text_input(key="data_source").input(typed).run()
        assert not at.exception
        assert [s.value for s in at.subheader if s.value == "Preview"] == []
        assert not any("root:" in str(df.value.to_csv()) for df in at.dataframe)
        assert len(at.button) == 0  # no Load button without a preview
        errors.append(at.error[0].value)
    assert len(set(errors)) == 1 and "Only files inside the data folders" in errors[0]
    at.text_input(key="data_source").input("tx.csv").run()
    assert not at.exception and not at.error
    assert any(s.value == "Preview" for s in at.subheader) and len(at.dataframe[0].value) == 10
