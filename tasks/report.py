"""The run report: the pipeline graph with the path taken marked, the decision, and target metrics vs baseline."""

from __future__ import annotations

from typing import Any

from tasks.branching import Decision
from tasks.results import EvaluationReport, PreparedSet, TrainSummary, ValidationSummary

_GRAPH = """graph LR
    A[source-domain data] --> B{{source and target similar?}}
    B --yes--> C[joint training on source + target]
    B --no--> D[augmentation, resampling, ...]
    C --> E[fine-tune] --> F[evaluate on target domain]
    D --> E
    B --few labels--> G[few-shot: contrastive tuning on the labelled target texts] --> E
    {style}"""


def mermaid_graph(branch: str) -> str:
    """The pipeline's mermaid graph with the nodes of the path this run took highlighted."""
    taken = {"joint_training": "A,B,C,E,F", "shift_adaptation": "A,B,D,E,F", "few_shot": "A,B,G,E,F"}[branch]
    style = f"classDef taken fill:#c8f7c5,stroke:#2e7d32,stroke-width:2px\n    class {taken} taken"
    return _GRAPH.format(style=style)


def metrics_table(metrics: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """A markdown table of target accuracy and macro-F1, adapted vs source-only baseline."""
    rows = ["| metric | adapted | source-only baseline | gain |", "|---|---|---|---|"]
    for key in ("accuracy", "macro_f1"):
        base = f"{baseline[key]:.4f}" if baseline else "-"
        delta = f"{metrics[key] - baseline[key]:+.4f}" if baseline else "-"
        rows.append(f"| {key} | {metrics[key]:.4f} | {base} | {delta} |")
    return "\n".join(rows)


def run_markdown(summary: dict[str, Any]) -> str:
    """The whole report of one run as markdown."""
    decision = summary["decision"]
    return "\n\n".join([
        "# adaptflow run",
        f"**Branch:** `{summary['branch']}`  \n**Why:** {decision['rationale']}  \n"
        f"**Strategies:** {', '.join(summary.get('strategies', [])) or '-'}",
        "```mermaid\n" + mermaid_graph(summary["branch"]) + "\n```",
        f"**Data validation:** {summary['validation']}",
        "## Target test set (n = {n})\n\n{table}".format(
            n=summary["metrics"]["n"], table=metrics_table(summary["metrics"], summary.get("baseline_metrics"))),
        f"Model: `{summary['model_dir']}`" + _registry_line(summary),
    ])


def _registry_line(summary: dict[str, Any]) -> str:
    registered = summary.get("registered")
    line = f"  \nMLflow run: `{summary['mlflow_run_id']}`" if summary.get("mlflow_run_id") else ""
    if summary.get("mlflow_run_url"):
        line += f" ([open in MLflow]({summary['mlflow_run_url']}))"
    if registered and "version" in registered:
        role = "champion" if registered["promoted"] else "challenger"
        line += (f"  \nRegistered: `{registered['name']}` version {registered['version']} ({role}): "
                 f"{registered['reason']}")
    return line


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The few lines `adaptflow run` prints at the end."""
    metrics, baseline = summary["metrics"], summary.get("baseline_metrics")
    lines = [f"branch: {summary['branch']} ({summary['decision']['rationale']})",
             f"strategies: {', '.join(summary.get('strategies', [])) or '-'}",
             f"target test (n={metrics['n']}): accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"]
    if baseline:
        lines.append(f"source-only baseline: accuracy {baseline['accuracy']:.4f}, macro-F1 {baseline['macro_f1']:.4f}"
                     f" (gain {metrics['accuracy'] - baseline['accuracy']:+.4f} accuracy)")
    lines.append(f"model: {summary['model_dir']}")
    if summary.get("mlflow_run_url"):
        lines.append(f"MLflow run: {summary['mlflow_run_url']}")
    registered = summary.get("registered")
    if registered and "version" in registered:
        lines.append(f"registered: {registered['name']} version {registered['version']} "
                     f"({'champion' if registered['promoted'] else 'challenger'}; {registered['reason']})")
    return lines


def summarise_run(validation: ValidationSummary, decision: Decision, prepared: PreparedSet, adapted: TrainSummary,
                  report: EvaluationReport) -> dict[str, Any]:
    """The story of a finished run from its stages' results: branch and why, strategies, validation, metrics."""
    return {"branch": decision.branch, "decision": decision.to_dict(),
            "strategies": prepared.strategies + adapted.strategies, "rows": validation.counts,
            "validation": validation.status, **report.to_dict()}
