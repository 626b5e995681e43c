"""`adaptflow`: the command line. Exit 0 on success, 1 on bad input or a failed check (one line), 2 on usage errors."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tasks.errors import AdaptflowError

DEFAULT_PARAMS = Path("params.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaptflow", description="Adapt a foundation model to a target domain.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from flows.init_project import add_init_parser

    add_init_parser(commands, DEFAULT_PARAMS).set_defaults(handler=cmd_init)
    from flows.sweep_cli import add_sweep_parser, cmd_sweep

    add_sweep_parser(commands, DEFAULT_PARAMS).set_defaults(handler=cmd_sweep)

    run = commands.add_parser("run", help="run the whole pipeline as a Prefect flow")
    _add_config_options(run)
    run.add_argument("--json", action="store_true", help="print one JSON object with the results")
    run.set_defaults(handler=cmd_run)

    validate = commands.add_parser("validate", help="check one data file")
    validate.add_argument("--data", type=Path, required=True, help="CSV/TSV, Parquet, JSON Lines or datasets dir")
    validate.add_argument("--role", choices=["source", "target", "test", "unlabeled"], default="source")
    validate.add_argument("--text-column", action="append", dest="text_columns", metavar="C",
                          help="text column (repeat to join several); default: data.text_columns of params")
    validate.add_argument("--label-column", metavar="C", help="default: data.label_column of params")
    validate.add_argument("--report-dir", type=Path, help="where to write the report")
    _add_config_options(validate)
    validate.set_defaults(handler=cmd_validate)

    similarity = commands.add_parser("similarity", help="measure how far the target domain is from the source")
    similarity.add_argument("--source", type=Path, required=True)
    similarity.add_argument("--target", type=Path, required=True)
    similarity.add_argument("--json", action="store_true")
    _add_config_options(similarity)
    similarity.set_defaults(handler=cmd_similarity)

    predict = commands.add_parser("predict", help="label texts with a trained model")
    predict.add_argument("--model", required=True, metavar="URI_OR_DIR", help="a model directory, or an MLflow URI: models:/NAME@champion, models:/NAME/3, runs:/ID/model")
    predict.add_argument("--input", type=Path, required=True, help="rows to label (any supported format)")
    predict.add_argument("--output", type=Path, help="CSV to write (default: standard output)")
    _add_config_options(predict)
    predict.set_defaults(handler=cmd_predict)

    watch = commands.add_parser("watch", help="emit a Prefect event for each data file that changed (starts "
                                "the scheduled-retraining deployment)")
    watch.add_argument("--state", type=Path, default=None, help="where the last-seen hashes are kept "
                       "(default .adaptflow-cache/watch.json)")
    watch.add_argument("--dry-run", action="store_true", help="report changes without emitting events")
    _add_config_options(watch)
    watch.set_defaults(handler=cmd_watch)

    from flows.stage_registry import STAGE_NAMES

    stage = commands.add_parser("stage", help="run one pipeline stage, as dvc.yaml calls it")
    stage.add_argument("name", choices=STAGE_NAMES)
    _add_config_options(stage)
    stage.set_defaults(handler=cmd_stage)

    dvc_yaml = commands.add_parser("dvc-yaml", help="write dvc.yaml from the stage registry and the params file")
    dvc_yaml.add_argument("--output", type=Path, default=Path("dvc.yaml"), help="where to write (default dvc.yaml)")
    dvc_yaml.add_argument("--check", action="store_true", help="only check that the file is up to date (exit 1 "
                          "when not)")
    _add_config_options(dvc_yaml)
    dvc_yaml.set_defaults(handler=cmd_dvc_yaml)
    return parser


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None, help="params file (default: ./params.yaml if present)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                        help="override one setting, e.g. --set train.epochs=1 (repeatable)")


def load_cli_config(args: argparse.Namespace):
    from tasks.config import load_config

    params = args.params if args.params is not None else (DEFAULT_PARAMS if DEFAULT_PARAMS.is_file() else None)
    return load_config(params, args.overrides)


def cmd_init(args: argparse.Namespace) -> int:
    from flows.init_project import init_project, report_lines

    report = init_project(args.source, args.target, args.target_test, args.text_columns, args.label_column,
                          args.params, args.force)
    print("\n".join(report_lines(report)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from flows.adaptation import adaptation_flow
    from flows.console import local_run
    from tasks.report import summary_lines

    config = load_cli_config(args)
    with local_run():
        summary = adaptation_flow(config)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print("\n".join(summary_lines(summary)))
    return 0


VALIDATE_ROLES = {"source": "source_train", "target": "target_labeled", "test": "target_test",
                  "unlabeled": "target_unlabeled"}


def cmd_validate(args: argparse.Namespace) -> int:
    from tasks.atomic import write_json
    from tasks.data_validation import validate_frames
    from tasks.loading import read_examples
    from tasks.models import load_tokenizer
    from tasks.validation import failure_line

    config = load_cli_config(args)
    data = config.data.model_copy(update={
        "text_columns": args.text_columns or config.data.text_columns,
        "label_column": args.label_column or config.data.label_column,
    })
    role = VALIDATE_ROLES[args.role]
    frame = read_examples(args.data, data, labelled=args.role != "unlabeled")
    labels = tuple(sorted(frame["label"].unique())) if "label" in frame.columns else ()
    docs = args.report_dir / "data_docs" if args.report_dir else None
    summary = validate_frames({role: frame}, config.validation, labels, {role: str(args.data)},
                              load_tokenizer(config.model.name_or_path), config.model.max_length, docs_dir=docs)
    for failure in summary["failures"]:
        print(failure_line(failure))
    if args.report_dir:
        write_json(args.report_dir / "summary.json", summary)
    truncated = summary.get("truncated_share", {}).get(role)
    print(f"{args.data}: {len(frame)} rows as {args.role}; {summary['status']}: {summary['errors']} errors, "
          f"{summary['warnings']} warnings; {truncated:.1%} of texts cut at model.max_length="
          f"{config.model.max_length}; {summary['seconds']} s")
    return 1 if summary["errors"] else 0


def cmd_similarity(args: argparse.Namespace) -> int:
    from flows.domain_shift import measure_pair
    from tasks.branching import decide_branch
    from tasks.loading import read_examples
    from tasks.tables import read_table

    config = load_cli_config(args)
    started = time.perf_counter()
    source = read_examples(args.source, config.data)
    has_labels = config.data.label_column in read_table(args.target, config.data.format, config.data.delimiter).columns
    target = read_examples(args.target, config.data, labelled=has_labels)
    measures = measure_pair(config, source, target)
    decision = decide_branch("auto", measures, config.similarity)
    if args.json:
        print(json.dumps({"measures": measures, "decision": "similar" if decision.similar else "dissimilar",
                          "branch": decision.branch, "rationale": decision.rationale}))
        return 0
    for key, value in measures.items():
        print(f"{key:>18}: {value:.4f}" if isinstance(value, float) else f"{key:>18}: {value}")
    print(f"decision: {'similar' if decision.similar else 'dissimilar'} -> branch {decision.branch}")
    print(f"rationale: {decision.rationale}")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from flows.predicting import predict_file

    config = load_cli_config(args)
    rows = predict_file(args.model, args.input, args.output, config)
    if args.output:
        print(f"{args.output}: {rows} rows labelled", file=sys.stderr)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from flows.watching import DEFAULT_STATE, changed_files, emit_changes

    config = load_cli_config(args)
    changes, _ = changed_files(config, args.state or DEFAULT_STATE)
    for change in changes:
        print(f"{change['path']}: md5 {change['previous'] or '(new)'} -> {change['md5']}")
    if changes and not args.dry_run:
        print(f"emitted {emit_changes(changes)} adaptflow.data.changed event(s)")
    elif not changes:
        print("no data file changed")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from flows import caching, stage_registry

    config = load_cli_config(args)
    if not args.overrides:
        from flows.dvc_pipeline import refuse_stale_dvc_yaml

        refuse_stale_dvc_yaml(config, args.params or DEFAULT_PARAMS)
    for step in stage_registry.BY_NAME[args.name].steps:  # the flow may reuse what it wrote, never what DVC rewrote
        caching.clear_stamp(config, step.task)
    result = stage_registry.run_stage(config, args.name)
    text = json.dumps(result.to_dict(), default=str)
    print(text if len(text) < 2000 else f"stage {args.name}: done")
    return 0


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    from flows.dvc_pipeline import write_dvc_yaml

    code, message = write_dvc_yaml(load_cli_config(args), args.params or DEFAULT_PARAMS, args.output, args.check)
    print(message)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from flows.console import set_up_console

    set_up_console(args.debug)
    try:
        return args.handler(args)
    except AdaptflowError as exc:
        if args.debug:
            raise
        print(f"adaptflow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # anything unexpected: one line for people, the traceback with --debug
        if args.debug:
            raise
        reason = str(exc).splitlines()[0] if str(exc) else ""
        print(f"adaptflow: unexpected error: {type(exc).__name__}: {reason} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("adaptflow: interrupted; completed checkpoints are kept, run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
