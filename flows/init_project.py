"""`adaptflow init`: a params.yaml for the user's own files, with the columns found in them and the labels checked,
the files put under DVC when the directory is a DVC project, and the next commands to run."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tasks.columns import detect_label_column, detect_text_columns
from tasks.config import AdaptflowConfig, DataConfig, SplitConfig
from tasks.errors import ConfigError
from tasks.roles import check_labels_known, label_set, to_examples
from tasks.tables import read_table
from tasks.write_params import params_text

DEFAULT_TEST_SIZE = SplitConfig().target_test_size


@dataclass
class InitReport:
    """What `init` found and did."""

    params: Path
    text_columns: list[str]
    label_column: str
    rows: dict[str, int]
    labels: tuple[str, ...]
    dvc_added: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def add_init_parser(commands: argparse._SubParsersAction, params: Path) -> argparse.ArgumentParser:
    """`adaptflow init`'s options."""
    init = commands.add_parser("init", help="write a params.yaml for your own data files (columns detected)")
    init.add_argument("--source", type=Path, required=True, help="labelled source-domain file")
    init.add_argument("--target", type=Path, required=True, help="target-domain file (labelled: split into a few "
                      "labels, unlabelled texts and a test set)")
    init.add_argument("--target-test", type=Path, help="a labelled target test file of its own")
    init.add_argument("--text-column", action="append", dest="text_columns", metavar="C",
                      help="text column (repeat to join several); default: detected (text, review, sentence, ...)")
    init.add_argument("--label-column", metavar="C", help="default: detected (label, sentiment, class, y, ...)")
    init.add_argument("--params", type=Path, default=params, help="the file to write (default params.yaml)")
    init.add_argument("--force", action="store_true", help="replace a params file that was edited")
    return init


def init_project(source: Path, target: Path, target_test: Path | None = None, text_columns: list[str] | None = None,
                 label_column: str | None = None, params: Path = Path("params.yaml"),
                 force: bool = False) -> InitReport:
    """Read the files, find their text and label columns, check the labels, write `params` (every other setting
    at its default) and, in a DVC project, `dvc add` the files and regenerate dvc.yaml."""
    files = {"source": source, "target": target, **({"target_test": target_test} if target_test else {})}
    tables = {role: read_table(path) for role, path in files.items()}
    text_columns = text_columns or detect_text_columns(tables["source"].columns, source)
    label_column = label_column or detect_label_column(tables["source"].columns, source)
    examples = {role: to_examples(table, files[role], text_columns, label_column) for role, table in tables.items()}
    labels = label_set(examples["source"], source)
    if len(labels) > max(20, len(examples["source"]) // 2):
        raise ConfigError(f"{source}: column '{label_column}' has {len(labels)} different values in "
                          f"{len(examples['source'])} rows, not a label; name the label with --label-column C")
    for role in ("target", "target_test"):
        if role in examples:
            check_labels_known(examples[role], labels, role, files[role])
    config = AdaptflowConfig(
        data=DataConfig(source=source, target=target, target_test=target_test, text_columns=text_columns,
                        label_column=label_column),
        split=SplitConfig(target_test_size=_test_size(len(examples["target"]), target_test is not None)))
    _refuse_edited(params, params_text(config), force)
    from tasks.atomic import write_text

    write_text(params, params_text(config))
    report = InitReport(params, text_columns, label_column, {role: len(frame) for role, frame in examples.items()},
                        labels)
    if Path(".dvc").is_dir():
        _track_with_dvc(list(files.values()), config, params, report)
    return report


def _test_size(target_rows: int, separate_test: bool) -> int:
    """The target test split: the default, or a quarter of a small target file."""
    if separate_test or target_rows >= 4 * DEFAULT_TEST_SIZE:
        return DEFAULT_TEST_SIZE
    return max(1, target_rows // 4)


def _refuse_edited(params: Path, new_text: str, force: bool) -> None:
    """A params file that is neither the defaults nor what init would write now is someone's edit."""
    if force or not params.is_file():
        return
    current = params.read_text(encoding="utf-8")
    if current not in (params_text(), new_text):
        raise ConfigError(f"{params}: exists and was edited (it differs from the defaults); move it away or run "
                          "adaptflow init --force to replace it")


def _track_with_dvc(paths: list[Path], config: AdaptflowConfig, params: Path, report: InitReport) -> None:
    """`dvc add` each file (a file git already tracks is left to git) and regenerate dvc.yaml for the new paths."""
    dvc = shutil.which("dvc", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    for path in paths:
        if dvc is None:
            report.notes.append(f"{path}: not added to DVC (no dvc command found)")
            continue
        done = subprocess.run([dvc, "add", "-q", str(path)], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            report.dvc_added.append(f"{path}.dvc")
        else:
            reason = (done.stderr.strip().splitlines() or ["dvc add failed"])[-1]
            report.notes.append(f"{path}: not added to DVC ({reason})")
    if Path("dvc.yaml").is_file():
        from flows.dvc_pipeline import dvc_yaml_text
        from tasks.atomic import write_text

        write_text(Path("dvc.yaml"), dvc_yaml_text(config, str(params)))
        report.notes.append("dvc.yaml regenerated: the validate stage now depends on these files")


def report_lines(report: InitReport) -> list[str]:
    """What init prints: what it found, what it wrote, and the commands to run next."""
    rows = ", ".join(f"{role} {count}" for role, count in report.rows.items())
    lines = [f"text: {' + '.join(report.text_columns)}; label: {report.label_column} "
             f"({', '.join(report.labels)}); rows: {rows}",
             f"wrote {report.params}"]
    lines += [f"dvc: added {name}" for name in report.dvc_added] + report.notes
    lines += ["next:", f"  adaptflow validate --data {_first_source(report)} --params {report.params}",
              f"  adaptflow run --params {report.params}", "  dvc repro"]
    return lines


def _first_source(report: InitReport) -> str:
    import yaml

    return str(yaml.safe_load(report.params.read_text(encoding="utf-8"))["data"]["source"])

