"""Bad input and hostile paths at the command line: one line naming the file, exit 1, nothing written downstream;
archives and links that would reach outside their directory are refused."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from flows.cli import main
from tasks.errors import ConfigError, DataError
from tasks.loading import confined
from tasks.tables import read_table
from tests.conftest import SAMPLE, THREE_REVIEWS

pytestmark = pytest.mark.reliability

ROWS = THREE_REVIEWS


def _parquet_cut_short(path: Path) -> None:
    ROWS.to_parquet(path)
    path.write_bytes(path.read_bytes()[:-20])


BAD_FILES = {
    "empty.csv": (b"", "is empty"),
    "header-only.csv": (b"title,text,label\n", "has no data rows"),
    "no-text.csv": (b"title,body,label\nA,b,positive\n", "text"),
    "no-label.csv": (b"title,text,stars\nA,b,5\n", "label"),
    "ragged.csv": (b"title,text,label\nA,b,positive\nC,d,e,f\n", "line 3 has 4 fields"),
    "latin-1.csv": (b"title,text,label\nCaf\xe9,good,positive\n", "not valid UTF-8 at byte offset 20"),
    "utf-16.csv": ("title,text,label\nA,b,positive\n".encode("utf-16"), "is UTF-16 encoded"),
    "bad-line.jsonl": (b'{"title": "a", "text": "b", "label": "positive"}\n{"text": \n', "line 2 is not valid JSON"),
    "cut.parquet": (_parquet_cut_short, "not a readable Parquet file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_kind_of_bad_file_is_one_line_exit_1_and_nothing_is_written(tmp_path, capsys, name):
    content, message = BAD_FILES[name]
    bad = tmp_path / name
    content(bad) if callable(content) else bad.write_bytes(content)
    out = tmp_path / "out"
    code = main(["stage", "validate", "--set", f"data.source={bad}", "--set", f"output.dir={out}"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith(f"adaptflow: error: {bad}") and message in err and "\n" not in err
    assert "Traceback" not in err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))  # nothing half-written


def test_a_byte_order_mark_in_the_header_is_read_like_plain_utf8(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ROWS.to_csv(index=False).encode())
    assert read_table(path).equals(read_table(_plain(tmp_path)))


def _plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.csv"
    path.write_bytes(ROWS.to_csv(index=False).encode())
    return path


# --- archives -------------------------------------------------------------------------------------------------------

def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def test_an_archive_holding_one_data_file_reads_as_that_file(tmp_path):
    csv = ROWS.to_csv(index=False).encode()
    expected = read_table(_plain(tmp_path))
    assert read_table(_tar(tmp_path / "rows.tar.gz", {"reviews/rows.csv": csv})).equals(expected)
    with zipfile.ZipFile(tmp_path / "rows.zip", "w") as bundle:
        bundle.writestr("rows.csv", csv)
    assert read_table(tmp_path / "rows.zip").equals(expected)


def test_a_bad_file_inside_an_archive_is_named_by_archive_and_member(tmp_path):
    archive = _tar(tmp_path / "rows.tgz", {"rows.csv": b"title,text,label\nA,b,positive\nC,d,e,f\n"})
    with pytest.raises(DataError, match=r"rows.tgz::rows.csv: line 3 has 4 fields"):
        read_table(archive)


def test_an_archive_with_several_data_files_asks_for_one(tmp_path):
    archive = _tar(tmp_path / "all.tar.gz", {"books.csv": b"a", "kitchen.csv": b"b"})
    with pytest.raises(DataError, match=r"must hold exactly one data file .*found 2: books.csv, kitchen.csv"):
        read_table(archive)


@pytest.mark.parametrize("member", ["../escaped.csv", "/tmp/adaptflow-absolute-escape.csv"])
def test_a_tar_member_escaping_the_extraction_directory_is_refused(tmp_path, member):
    archive = _tar(tmp_path / "evil.tar.gz", {member: b"title,text,label\nA,b,positive\n"})
    with pytest.raises(DataError, match=r"evil.tar.gz: member .* outside the extraction directory"):
        read_table(archive)
    assert not (tmp_path / "escaped.csv").exists()
    assert not Path("/tmp/adaptflow-absolute-escape.csv").exists()


def test_a_tar_link_pointing_outside_is_refused(tmp_path):
    archive = _tar(tmp_path / "link.tar.gz", {}, links={"rows.csv": "/etc/passwd"})
    with pytest.raises(DataError, match=r"link.tar.gz: member 'rows.csv' would be written outside"):
        read_table(archive)


def test_a_zip_member_escaping_the_extraction_directory_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../escaped.csv", "title,text,label\nA,b,positive\n")
    with pytest.raises(DataError, match=r"evil.zip: member '../../escaped.csv' would be written outside"):
        read_table(archive)
    assert not (tmp_path.parent / "escaped.csv").exists()


# --- data.root ------------------------------------------------------------------------------------------------------

def test_data_paths_are_confined_to_data_root_when_it_is_set(tmp_path):
    root = tmp_path / "datasets"
    root.mkdir()
    inside = _plain(root)
    outside = _plain(tmp_path)
    link = root / "sneaky.csv"
    os.symlink(outside, link)
    assert confined(inside, root) == inside
    assert confined(outside, None) == outside  # not configured: no check
    with pytest.raises(ConfigError, match=r"plain.csv: resolves to .* outside data.root"):
        confined(outside, root)
    with pytest.raises(ConfigError, match=r"sneaky.csv: resolves to .*plain.csv, outside data.root"):
        confined(link, root)
    with pytest.raises(ConfigError, match=r"outside data.root"):
        confined(root / ".." / "plain.csv", root)


def test_the_command_line_refuses_a_source_outside_data_root(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["stage", "validate", "--set", f"data.root={tmp_path}", "--set",
                 f"data.source={SAMPLE / 'books.csv'}", "--set", f"output.dir={out}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "outside data.root" in err and "\n" not in err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
