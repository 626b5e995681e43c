"""Typed results that cross stage boundaries: frozen dataclasses with a JSON round-trip.

Each stage returns one of these (the Prefect flow passes it to the next task, so the UI draws the arrow) and writes
its `to_dict()` as JSON under `output.dir` (so `dvc repro`, which runs each stage in a fresh process, reads it back
with `from_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Self

from tasks.config.strategy import Branch

ModelRole = Literal["baseline", "adapted"]
BRANCHES: tuple[Branch, ...] = Branch.__args__  # type: ignore[attr-defined]
MODEL_ROLES: tuple[ModelRole, ...] = ("baseline", "adapted")


class JsonRecord:
    """`to_dict()` / `from_dict()`: a JSON-ready mapping and back. Keys the class does not know are refused."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        known = {item.name for item in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field '{unknown[0]}' (known: {', '.join(sorted(known))})")
        return cls(**raw)


@dataclass(frozen=True)
class ValidationSummary(JsonRecord):
    """What the validation suite found: status, counts of failed checks, the failures, rows per role."""

    status: str
    errors: int
    warnings: int
    seconds: float = 0.0
    roles: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # truncated share, leaked rows, Data Docs index, ...

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        return {**{key: value for key, value in raw.items() if key != "details"}, **raw["details"]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ValidationSummary:
        known = {item.name for item in fields(cls)} - {"details"}
        return cls(**{key: value for key, value in raw.items() if key in known},
                   details={key: value for key, value in raw.items() if key not in known})


@dataclass(frozen=True)
class PreparedSet(JsonRecord):
    """The adapted model's training set as the branch built it: rows, the strategies applied, the word mapping."""

    branch: Branch
    rows: int
    strategies: list[str] = field(default_factory=list)
    substitutions: dict[str, str] | None = None


@dataclass(frozen=True)
class PseudoLabels(JsonRecord):
    """Self-training's pseudo-labels: how many unlabelled target texts were candidates and how many were kept."""

    candidates: int
    selected: int
    selected_per_class: dict[str, int] = field(default_factory=dict)
    threshold: float = 0.0


@dataclass(frozen=True)
class TrainSummary(JsonRecord):
    """One fine-tuned model: where it is, its per-epoch history, and what training-time strategies it used."""

    role: ModelRole
    model_dir: str
    history: list[dict[str, Any]]
    best_epoch: int
    stopped_early: bool
    n_train: int
    resumed_from_epoch: int | None = None
    strategies: list[str] = field(default_factory=list)
    reused: bool = False
    pseudo_labels: PseudoLabels | None = None
    round_1: dict[str, Any] | None = None  # self-training: the first round's history and best epoch

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainSummary:
        raw = dict(raw)
        if raw.get("pseudo_labels") is not None:
            raw["pseudo_labels"] = PseudoLabels.from_dict(raw["pseudo_labels"])
        return super().from_dict(raw)


@dataclass(frozen=True)
class EvaluationReport(JsonRecord):
    """Target-test metrics of the adapted model and of the source-only baseline, and the gain."""

    metrics: dict[str, Any]
    model_dir: str
    baseline_metrics: dict[str, Any] | None = None
    gain: dict[str, float] | None = None
    backend: str = "torch"  # what labelled the test texts (inference.backend, resolved)


@dataclass(frozen=True)
class Registration(JsonRecord):
    """What registering the model did: the version, whether the gate promoted it and why (or why it was skipped)."""

    name: str | None = None
    version: int | None = None
    promoted: bool = False
    reason: str = ""
    reused: bool = False
    skipped: str | None = None
