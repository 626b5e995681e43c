"""Data Docs views: GX's Jinja templates are compiled once, then read from Jinja's bytecode cache."""

from __future__ import annotations

import pandas as pd

from tasks.config import ValidationConfig
from tasks.data_validation import validate_frames

GOOD = pd.DataFrame({"text": [f"review number {i} is {'good' if i % 2 else 'bad'}" for i in range(24)],
                     "label": ["positive" if i % 2 else "negative" for i in range(24)]})


def test_a_second_validation_renders_its_data_docs_without_compiling_a_template_again(tmp_path, monkeypatch):
    from tasks import gx_views

    cache = tmp_path / "jinja"
    cache.mkdir()
    monkeypatch.setattr(gx_views, "CACHE_DIR", str(cache))
    gx_views.bytecode_cache.cache_clear()
    try:
        def validate(docs: str) -> dict[str, int]:
            validate_frames({"source_train": GOOD}, ValidationConfig(), ("negative", "positive"), {},
                            docs_dir=tmp_path / docs)
            assert (tmp_path / docs / "index.html").is_file()
            return {path.name: path.stat().st_mtime_ns for path in cache.iterdir()}

        compiled = validate("first")
        assert len(compiled) >= 3  # the page, the index and the content blocks they include
        assert validate("second") == compiled  # every template read back, none compiled and written again
    finally:
        gx_views.bytecode_cache.cache_clear()



def test_without_a_usable_cache_directory_the_data_docs_are_rendered_all_the_same(tmp_path, monkeypatch):
    import os
    import tempfile

    from tasks import gx_views

    squatter = tmp_path / f"_jinja2-cache-{os.getuid()}"  # Jinja's per-user directory name, taken by a file
    squatter.write_text("not a directory")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(gx_views, "CACHE_DIR", None)  # Jinja's default: refuses that entry as unsafe
    gx_views.bytecode_cache.cache_clear()
    try:
        summary = validate_frames({"source_train": GOOD}, ValidationConfig(), ("negative", "positive"), {},
                                  docs_dir=tmp_path / "docs")
        assert summary["status"] == "passed" and (tmp_path / "docs" / "index.html").is_file()
        assert squatter.read_text() == "not a directory"
    finally:
        gx_views.bytecode_cache.cache_clear()
