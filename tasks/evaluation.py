"""Target-domain metrics: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def compute_metrics(y_true: list[str], y_pred: list[str], labels: tuple[str, ...]) -> dict[str, Any]:
    """The classification metrics of `y_pred` against `y_true` over the label set `labels`."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    label_list = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=label_list, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=label_list, average="macro", zero_division=0)),
        "n": len(y_true),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(label_list, precision, recall, f1, support, strict=True)
        },
        "labels": label_list,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=label_list).tolist(),
    }


def gain(metrics: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float]:
    """How much `metrics` beat the baseline on accuracy and macro-F1 (empty without a baseline)."""
    if not baseline:
        return {}
    return {key: metrics[key] - baseline[key] for key in ("accuracy", "macro_f1")}


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    """Save the confusion matrix as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axis = plt.subplots(figsize=(4 + 0.4 * len(labels), 3.5 + 0.4 * len(labels)))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=labels).plot(ax=axis, colorbar=False, cmap="Blues")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_training_curves(histories: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Save the training loss (per optimizer step where the history has the steps, else per epoch) and the
    validation macro-F1 per epoch, one line per trained model, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, f1_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    per_step = all(row.get("steps") for history in histories.values() for row in history)
    for name, history in histories.items():
        if per_step:
            steps = [step for row in history for step in row["steps"]]
            loss_axis.plot([step["step"] for step in steps], [step["train_loss"] for step in steps], label=name,
                           linewidth=1)
        else:
            loss_axis.plot([row["epoch"] for row in history], [row["train_loss"] for row in history], marker="o",
                           label=name)
        scored = [row for row in history if row.get("val_macro_f1") is not None]
        if scored:
            f1_axis.plot([r["epoch"] for r in scored], [r["val_macro_f1"] for r in scored], marker="o", label=name)
    loss_axis.set(title="training loss", xlabel="optimizer step" if per_step else "epoch")
    f1_axis.set(title="target validation macro-F1", xlabel="epoch")
    for axis in (loss_axis, f1_axis):
        if axis.get_legend_handles_labels()[0]:  # no validation texts (the few-shot path): an empty panel
            axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_domain_embeddings(source: np.ndarray, target: np.ndarray, path: Path) -> Path:
    """A 2-D PCA projection of source and target embeddings, coloured by domain, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    path.parent.mkdir(parents=True, exist_ok=True)
    points = PCA(n_components=2, random_state=0).fit_transform(np.vstack([source, target]))
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    if len(source):
        axis.scatter(*points[: len(source)].T, s=6, alpha=0.5, label=f"source (n={len(source)})")
    axis.scatter(*points[len(source):].T, s=6, alpha=0.5, label=f"target (n={len(target)})", color="C1")
    title = "source and target embeddings (PCA)" if len(source) else "target embeddings (PCA); no source domain"
    axis.set(title=title, xlabel="PC 1", ylabel="PC 2")
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
