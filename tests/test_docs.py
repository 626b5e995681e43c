"""The README and the docs stay true: the docs build cleanly, and every `adaptflow` command they show parses."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from flows.cli import build_parser
from tests.conftest import REPO

FENCE = re.compile(r"```bash\n(.*?)```", re.S)


def _commands(text: str) -> list[list[str]]:
    """The `adaptflow ...` command lines of a markdown text's bash blocks, split as the shell splits them."""
    found = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():  # a line continued with a backslash is one command
            words = shlex.split(line, comments=True)
            if words and os.path.basename(words[0]) == "adaptflow":
                found.append(words[1:])
    return found


@pytest.mark.parametrize("page", ["README.md", *sorted(p.relative_to(REPO).as_posix()
                                                       for p in (REPO / "docs").glob("*.md"))])
def test_every_adaptflow_command_shown_parses_against_the_cli(page):
    parser = build_parser()
    for words in _commands((REPO / page).read_text(encoding="utf-8")):
        try:
            parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"{page}: `adaptflow {shlex.join(words)}` does not parse against the CLI")


def test_the_readme_shows_commands_and_stays_a_front_door():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(_commands(text)) >= 4 and len(text.splitlines()) <= 160


def test_a_command_the_cli_does_not_know_is_caught():
    parser = build_parser()
    (words,) = _commands("```bash\n.venv/bin/adaptflow run --epochs 3   # no such option\n```\n")
    with pytest.raises(SystemExit):
        parser.parse_args(words)


@pytest.mark.integration
def test_the_docs_build_without_a_warning(tmp_path):
    mkdocs = os.path.join(os.path.dirname(sys.executable), "mkdocs")
    done = subprocess.run([mkdocs, "build", "--strict", "-d", str(tmp_path / "site")], cwd=REPO,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "strategies" / "index.html").is_file()
