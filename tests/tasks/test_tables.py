"""Reading data files: every format, and a one-line error naming the file and place for each kind of bad input."""

from __future__ import annotations

import json

import pytest

from tasks.config import DataConfig
from tasks.errors import DataError
from tasks.loading import read_examples
from tasks.tables import read_table
from tests.conftest import THREE_REVIEWS

ROWS = THREE_REVIEWS


def write_csv(path, text: str | bytes):
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl", "hf"])
def test_every_format_reads_the_same_rows(tmp_path, suffix):
    path = tmp_path / f"rows{suffix if suffix != 'hf' else ''}"
    if suffix == ".csv":
        ROWS.to_csv(path, index=False)
    elif suffix == ".tsv":
        ROWS.to_csv(path, index=False, sep="\t")
    elif suffix == ".parquet":
        ROWS.to_parquet(path)
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(row) for row in ROWS.to_dict("records")), encoding="utf-8")
    else:
        import datasets

        datasets.Dataset.from_pandas(ROWS).save_to_disk(str(path))
    frame = read_table(path)
    assert frame[["title", "text", "label"]].astype(str).values.tolist() == ROWS.values.tolist()


def test_text_columns_are_joined_and_labels_kept(tmp_path):
    path = tmp_path / "rows.csv"
    ROWS.to_csv(path, index=False)
    examples = read_examples(path, DataConfig(text_columns=["title", "text"]))
    assert examples["text"].tolist() == ["Great. works well", "Bad. broke fast", "Fine. as described"]
    assert examples["label"].tolist() == ["positive", "negative", "positive"]


def test_a_missing_cell_in_one_text_column_is_skipped(tmp_path):
    path = write_csv(tmp_path / "rows.csv", "title,text,label\n,only text,positive\n")
    assert read_examples(path, DataConfig())["text"].tolist() == ["only text"]


@pytest.mark.reliability
def test_utf8_bom_in_the_header_is_accepted(tmp_path):
    path = write_csv(tmp_path / "bom.csv", b"\xef\xbb\xbftitle,text,label\nA,b,positive\n")
    assert list(read_table(path).columns) == ["title", "text", "label"]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty; expected a header row"),
    (b"title,text,label\n", "has no data rows (empty or header only)"),
    (b"title,text,label\nA,b,positive\nC,d,e,f\n", "line 3 has 4 fields, expected 3"),
    (b"title,text,label\nCaf\xe9,good,positive\n", "not valid UTF-8 at byte offset 20 (byte 0xe9)"),
    ("title,text,label\nA,b,positive\n".encode("utf-16"), "is UTF-16 encoded; re-save it as UTF-8"),
])
@pytest.mark.reliability
def test_bad_csv_gives_one_line_naming_the_file(tmp_path, content, message):
    path = write_csv(tmp_path / "bad.csv", content)
    with pytest.raises(DataError) as error:
        read_table(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.reliability
def test_missing_column_names_it_and_what_was_found(tmp_path):
    path = write_csv(tmp_path / "rows.csv", "title,body,label\nA,b,positive\n")
    with pytest.raises(DataError, match=r"missing column 'text' \(found: title, body, label\); .*data.text_columns"):
        read_examples(path, DataConfig(text_columns=["title", "text"]))


@pytest.mark.reliability
def test_a_table_without_a_text_like_column_says_which_names_were_looked_for(tmp_path):
    path = write_csv(tmp_path / "rows.csv", "headline,stars,label\nA,5,positive\n")
    with pytest.raises(DataError, match=r"rows.csv: no text column found \(looked for text, review, .*found: "
                                        r"headline, stars, label\); name it with --text-column C"):
        read_examples(path, DataConfig())


@pytest.mark.reliability
def test_missing_label_column_points_at_the_setting(tmp_path):
    path = write_csv(tmp_path / "rows.csv", "title,text,stars\nA,b,5\n")
    with pytest.raises(DataError, match=r"missing column 'label'.*set data.label_column"):
        read_examples(path, DataConfig())


@pytest.mark.reliability
def test_empty_label_names_the_row(tmp_path):
    path = write_csv(tmp_path / "rows.csv", "title,text,label\nA,b,positive\nC,d,\n")
    with pytest.raises(DataError, match=r"row 2 has an empty 'label'"):
        read_examples(path, DataConfig())


def test_an_empty_text_is_kept_for_the_validation_suite_to_report(tmp_path):
    path = write_csv(tmp_path / "rows.csv", "title,text,label\nA,b,positive\n , ,negative\n")
    assert read_examples(path, DataConfig())["text"].tolist() == ["A. b", ""]


@pytest.mark.reliability
def test_truncated_parquet_is_reported(tmp_path):
    path = tmp_path / "rows.parquet"
    ROWS.to_parquet(path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"rows.parquet: not a readable Parquet file .*; re-export it"):
        read_table(path)


@pytest.mark.reliability
def test_bad_json_lines_line_is_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a", "label": "positive"}\n{"text": "b", "label": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"rows.jsonl: line 2 is not valid JSON"):
        read_table(path)


def test_unknown_suffix_lists_the_known_ones(tmp_path):
    path = write_csv(tmp_path / "rows.docx", "x")
    with pytest.raises(DataError, match=r"unknown file type '.docx'; use one of .csv"):
        read_table(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: file not found"):
        read_table(tmp_path / "nope.csv")


# --- files as people have them ---------------------------------------------------------------------------------------

def test_a_text_label_file_needs_no_column_setting_and_a_title_is_joined_when_present(tmp_path):
    plain = write_csv(tmp_path / "plain.csv", "text,label\nWorks well,positive\nBroke fast,negative\n")
    assert read_examples(plain, DataConfig())["text"].tolist() == ["Works well", "Broke fast"]
    titled = write_csv(tmp_path / "titled.csv", "title,text,label\nGreat,Works well,positive\n")
    assert read_examples(titled, DataConfig())["text"].tolist() == ["Great. Works well"]


def test_a_semicolon_csv_as_a_spreadsheet_in_a_semicolon_locale_saves_it_is_read(tmp_path):
    # what Excel / LibreOffice write with ';' as list separator: a BOM, CRLF line ends, ';' inside quotes
    path = write_csv(tmp_path / "export.csv", "\ufeffreview;sentiment\r\n\"Great; works well\";positive\r\n"
                                              "Broke in a day;negative\r\n")
    frame = read_table(path)
    assert list(frame.columns) == ["review", "sentiment"]
    assert frame["review"].tolist() == ["Great; works well", "Broke in a day"]


@pytest.mark.parametrize("delimiter", ["\t", "|", ","])
def test_the_delimiter_is_detected_from_the_header(tmp_path, delimiter):
    path = write_csv(tmp_path / "rows.csv", f"text{delimiter}label\nfine really{delimiter}positive\n")
    assert read_table(path).to_dict("records") == [{"text": "fine really", "label": "positive"}]


def test_data_delimiter_overrides_the_detection(tmp_path):
    path = write_csv(tmp_path / "rows.csv", "text;label\na,b;positive\n")  # a header that would read as ';'
    assert list(read_table(path, delimiter=",").columns) == ["text;label"]


def test_an_xlsx_workbook_is_read_from_its_first_sheet(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in (["review", "sentiment"], ["Great kettle", "positive"], [1234, "negative"], [None, None]):
        sheet.append(row)
    book.create_sheet("notes").append(["ignored"])
    book.save(tmp_path / "reviews.xlsx")
    frame = read_table(tmp_path / "reviews.xlsx")
    assert frame.to_dict("records") == [{"review": "Great kettle", "sentiment": "positive"},
                                        {"review": "1234", "sentiment": "negative"}]


@pytest.mark.reliability
def test_a_damaged_workbook_is_one_line_naming_the_file(tmp_path):
    path = write_csv(tmp_path / "broken.xlsx", b"PK\x03\x04 not really a workbook")
    with pytest.raises(DataError, match=r"broken.xlsx: not a readable Excel workbook"):
        read_table(path)


@pytest.mark.parametrize("name", ["rows.csv.gz", "rows.jsonl.gz", "rows.tsv.gz"])
def test_gzip_compressed_files_are_read_directly(tmp_path, name):
    import gzip

    kind = name.split(".")[1]
    text = {"csv": ROWS.to_csv(index=False), "tsv": ROWS.to_csv(index=False, sep="\t"),
            "jsonl": ROWS.to_json(orient="records", lines=True)}[kind]
    (tmp_path / name).write_bytes(gzip.compress(text.encode()))
    assert read_table(tmp_path / name)["text"].tolist() == ROWS["text"].tolist()


def test_a_zip_compressed_csv_is_read_directly(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "rows.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export;data.csv", ROWS.to_csv(index=False, sep=";"))
    assert read_table(tmp_path / "rows.zip")["text"].tolist() == ROWS["text"].tolist()


@pytest.mark.reliability
def test_a_gzip_file_that_is_not_gzip_is_one_line(tmp_path):
    path = write_csv(tmp_path / "rows.csv.gz", "text,label\n")
    with pytest.raises(DataError, match=r"rows.csv.gz: not a readable gzip file"):
        read_table(path)
