"""One typed configuration for the whole pipeline.

`params.yaml` is its serialised form (what DVC tracks), the Prefect flow takes it as its parameter (so the UI renders
a form for it) and the CLI reads `params.yaml` with `--set section.key=value` overrides on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.errors import ConfigError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
Branch = Literal["joint_training", "shift_adaptation"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where each data role comes from and which columns hold the text and the label."""

    source: Path = Field(Path("data/sample/books.csv"), description="Labelled source-domain data.")
    target: Path | None = Field(
        Path("data/sample/kitchen.csv"),
        description="One labelled target file, split by `split` into labelled-few / unlabelled / test.",
    )
    target_labeled: Path | None = Field(None, description="Labelled target data (instead of splitting `target`).")
    target_unlabeled: Path | None = Field(None, description="Unlabelled target texts (optional).")
    target_test: Path | None = Field(None, description="Labelled target test data (instead of splitting `target`).")
    text_columns: list[str] = Field(["title", "text"], min_length=1, description="Joined to make the text.")
    text_separator: str = Field(". ", description="Put between the text columns when joining them.")
    label_column: str = "label"
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl", "hf"] = "auto"
    root: Path | None = Field(None, description="When set, every data file must resolve (links followed) inside "
                              "this directory; a path or link leading elsewhere is refused.")

    @model_validator(mode="after")
    def _target_given_once(self) -> DataConfig:
        if self.target is None and self.target_test is None:
            raise ValueError("set data.target (one file to split) or data.target_test (a labelled test file)")
        return self


class SplitConfig(_Section):
    """Seeded, stratified splits of the target file (and an optional source hold-out)."""

    seed: int = 0
    target_test_size: int = Field(100, ge=1, description="Rows of `data.target` kept as the target test set.")
    target_labeled_per_class: int = Field(25, ge=0, description="Labelled target rows per class (0 = none).")
    source_test_size: int = Field(0, ge=0, description="Source rows held out to score the source domain.")
    validation_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share of labelled target rows kept for early stopping."
    )


Severity = Literal["error", "warning"]
CHECK_NAMES = ("row_count", "text_is_string", "text_not_null", "text_not_blank", "text_length", "no_control_chars", "mojibake_share",
               "duplicates", "truncated_share", "label_in_set", "min_classes", "min_per_class", "class_balance",
               "leakage")


class ValidationConfig(_Section):
    """The data-validation suite (Great Expectations) run on every data role before anything is trained."""

    enabled: bool = True
    min_rows_source: int = Field(20, ge=1, description="Fewest rows the source training set may have.")
    min_rows_test: int = Field(10, ge=1, description="Fewest rows the target test set may have.")
    min_per_class: int = Field(5, ge=1, description="Fewest rows of each class in source and target test.")
    min_chars: int = Field(3, ge=1, description="Shortest text, in characters.")
    max_chars: int = Field(2_000_000, ge=1, description="Longest text, in characters.")
    max_mojibake_share: float = Field(0.05, ge=0, le=1, description="Share of texts with mojibake or U+FFFD.")
    max_imbalance: float = Field(3.0, ge=1, description="Largest class / smallest class, above which: warning.")
    max_truncated_share: float = Field(0.5, ge=0, le=1, description="Share of texts cut at model.max_length.")
    drop_leaked: bool = Field(False, description="Drop target-test texts found in training data (else: error).")
    severity: dict[str, Severity] = Field(
        default_factory=dict, description="Per-check severity overrides, e.g. {duplicates: error}."
    )

    @field_validator("severity")
    @classmethod
    def _known_checks(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CHECK_NAMES))
        if unknown:
            raise ValueError(f"unknown check '{unknown[0]}'; valid checks: {', '.join(CHECK_NAMES)}")
        return value


class ModelConfig(_Section):
    """The foundation model: any Hugging Face id or local directory (safetensors weights only)."""

    name_or_path: str = DEFAULT_MODEL
    max_length: int = Field(128, ge=8, le=4096, description="Texts are truncated to this many tokens.")


class SimilarityConfig(_Section):
    """The source/target similarity check: measures on samples of both domains and the thresholds that decide.

    The defaults were calibrated on the Amazon reviews (benchmarks/calibrate_similarity.py): electronics <-> kitchen
    similar, books <-> electronics and books <-> kitchen dissimilar.
    """

    sample_size: int = Field(1000, ge=10, description="Texts sampled (seeded) from each side.")
    max_length: int = Field(128, ge=8, description="Tokens per text for the embeddings.")
    permutations: int = Field(200, ge=0, description="Permutations for the MMD p-value.")
    seed: int = 0
    mmd2_max: float = Field(0.10, ge=0, description="Similar only if MMD² is at most this.")
    proxy_a_distance_max: float = Field(1.92, ge=0, le=2, description="Similar only if the proxy A-distance is "
                                        "at most this.")
    cache_dir: Path = Field(Path(".adaptflow-cache/embeddings"), description="Embedding cache (content hashes).")


ShiftStrategy = Literal["importance_weighting", "class_balance", "augmentation", "vocabulary_substitution",
                       "pseudo_labeling", "target_mlm", "domain_adversarial"]
SHIFT_STRATEGIES: tuple[str, ...] = ShiftStrategy.__args__  # type: ignore[attr-defined]


class StrategyConfig(_Section):
    """Which branch adapts the model, how the joint branch weighs the target domain, and what the shift-adaptation
    branch does (its strategies compose, in the order listed)."""

    branch: Literal["auto", "joint_training", "shift_adaptation"] = "auto"
    target_weight: float | None = Field(
        1.0, gt=0, description="Joint branch: loss weight of each labelled target row (source rows weigh 1); null = "
        "both domains carry equal total weight. Measured on electronics -> kitchen (3 seeds): 1 beat equal totals "
        "by 1.5 points; the few target texts up-weighted ~40x are overfitted."
    )
    shift_target_weight: float | None = Field(
        3.65, gt=0, description="Shift-adaptation branch: loss weight of each labelled target row and its augmented "
        "copies (source rows weigh about 1); null = both domains carry equal total weight (about 13 per row for 1,600 "
        "source rows against 40 texts and 80 copies). 3.65 = sqrt(1600/120), the geometric middle of 1 and equal "
        "totals. Over 3 seeds of books <-> kitchen it scored +2.50 over source-only on average against +1.63 for "
        "equal totals and +1.67 for 1, and was never below source-only (BENCHMARKS.md, round 7)."
    )
    shift_strategies: list[ShiftStrategy] = Field(
        ["vocabulary_substitution", "class_balance", "augmentation", "pseudo_labeling"],
        description="What the shift_adaptation branch does (text rewriting, then weights, then augmentation, then "
                    "the training-time strategies): vocabulary_substitution, importance_weighting, class_balance, "
                    "augmentation, pseudo_labeling, target_mlm, domain_adversarial.",
    )
    augment_copies: int = Field(2, ge=0, description="Augmented copies per labelled target text.")
    augment_rate: float = Field(0.1, ge=0, le=0.5, description="Share of tokens swapped/deleted/inserted per copy.")
    importance_clip: float = Field(10.0, gt=1, description="Importance weights are clipped to [1/clip, clip].")
    substitution_share: float = Field(0.5, ge=0, le=1, description="Share of source texts whose source-specific "
                                      "words are replaced by target words of the same role.")
    substitution_vocabulary: int = Field(150, ge=1, description="Domain-specific words considered on each side.")
    substitution_min_similarity: float = Field(0.5, ge=-1, le=1, description="Least cosine similarity (word "
                                               "embeddings) for a source word to be mapped to a target word.")
    pseudo_label_threshold: float = Field(0.9, ge=0.5, le=1, description="Least confidence for an unlabelled "
                                          "target text to join the training set with its predicted label.")
    pseudo_label_max_per_class: int = Field(600, ge=1, description="Most pseudo-labelled texts per class "
                                            "(the most confident first; classes are kept equal). 600 beat 400 by "
                                            "0.3 points on books -> kitchen over 3 seeds (BENCHMARKS.md, round 6).")
    pseudo_label_epochs: int = Field(1, ge=1, description="Epochs of the second round, which continues from the "
                                     "first-round model on the prepared set and the pseudo-labelled target texts.")
    pseudo_label_with_source: bool = Field(
        True, description="The second round trains on the whole prepared set (source and labelled target, with "
        "their weights) plus the pseudo-labelled texts; false = on the labelled and pseudo-labelled target texts "
        "alone. Measured over 3 seeds at 400 per class (BENCHMARKS.md, round 6): with the source, books -> kitchen "
        "0.9167 against 0.9025 and kitchen -> books 0.8725 against 0.8683; never lower on a seed.")
    pseudo_label_student: Literal["continue", "fresh"] = Field(
        "continue", description="Where the second round starts: continue = from the first-round model; fresh = "
        "from the foundation model (a new student learns from the pseudo-labels rather than the teacher "
        "re-reading its own confident predictions).")
    mlm_weight: float = Field(1.0, gt=0, description="Weight of the target masked-LM loss added to the "
                              "classification loss (UDALM-style mixed objective).")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="Share of target tokens masked.")
    mlm_head_warmup_steps: int = Field(200, ge=0, description="Masked target batches that train the new MLM head "
                                       "alone (encoder untouched) before the mixed objective starts; 0 = none.")
    adversarial_weight: float = Field(0.1, gt=0, description="domain_adversarial: the largest gradient-reversal "
                                      "scale (DANN's lambda, ramped up from 0 over training).")


DEVICE_CHOICES = r"auto|cpu|cuda(:\d+)?"  # train.device; tasks.devices resolves it


class TrainConfig(_Section):
    """The fine-tuning engine's settings."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    early_stopping_patience: int = Field(1, ge=0, description="Epochs without improvement before stopping (0 = off).")
    min_validation_size: int = Field(
        30, ge=1, description="Fewest validation texts that may pick the epoch and stop early. On a smaller split "
        "one text moves accuracy by more than 3 points, more than late epochs differ, so the split is only "
        "reported and the last epoch is kept (50 labelled target texts give a validation split of 10).")
    group_by_length: bool = True
    freeze_embeddings: bool = Field(True, description="Do not update the word-embedding matrix (half of MiniLM's "
                                    "weights; its AdamW update is pure cost on small data).")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="bf16 autocast for matrix work; auto = bf16 where the device computes bf16 natively "
        "(a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX), else fp32."
    )
    device: str = Field("auto", pattern=f"^({DEVICE_CHOICES})$", description="Where training, inference and "
                        "embedding run: auto = the CUDA GPU when torch sees one, else the CPU; or cpu, cuda, cuda:N.")
    seed: int = 0
    resume: bool = Field(True, description="Resume from the last complete checkpoint of an identical run.")
    keep_checkpoints: bool = Field(False, description="Keep epoch checkpoints after training finishes.")


class EvaluationConfig(_Section):
    """How the target test set is scored."""

    baseline: bool = Field(True, description="Also train a source-only baseline with the same engine.")
    batch_size: int = Field(64, ge=1)


class OutputConfig(_Section):
    """Where the run writes its data splits, models and reports."""

    dir: Path = Path("outputs")


class TrackingConfig(_Section):
    """MLflow: where runs are tracked, which registered model gets the versions, and the promotion gate."""

    enabled: bool = Field(True, description="Track every run in MLflow and register its model.")
    uri: str | None = Field(None, description="Tracking URI; null = $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db "
                            "with artifacts in mlartifacts/ beside it.")
    experiment: str = Field("adaptflow", min_length=1)
    registered_model: str = Field("adaptflow-classifier", min_length=1, description="Registered model name.")
    register_model: bool = Field(True, description="Register the adapted model as a new version (alias challenger).")
    promotion_margin: float = Field(0.002, ge=0, description="Target macro-F1 must beat the champion's by this "
                                    "to take the champion alias.")
    max_source_drop: float = Field(0.02, ge=0, description="Largest source-domain macro-F1 drop against the "
                                   "champion that still allows promotion.")


class AdaptflowConfig(_Section):
    """Everything one pipeline run needs; `params.yaml` is this object serialised."""

    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    validation: ValidationConfig = ValidationConfig()
    model: ModelConfig = ModelConfig()
    similarity: SimilarityConfig = SimilarityConfig()
    strategy: StrategyConfig = StrategyConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    output: OutputConfig = OutputConfig()
    tracking: TrackingConfig = TrackingConfig()


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=1` -> (["train", "epochs"], 1); the value is read as YAML (numbers, null, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, for example --set train.epochs=1")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `raw` with each KEY=VALUE override set at its dotted path."""
    merged: dict[str, Any] = _deep_copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return merged


def build_config(raw: dict[str, Any], origin: str = "params") -> AdaptflowConfig:
    """Validate a plain mapping into the typed config, or raise ConfigError naming the key and the valid choices."""
    try:
        return AdaptflowConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_describe(exc.errors()[0])}") from None


def load_config(params_file: Path | None = None, overrides: list[str] | None = None) -> AdaptflowConfig:
    """Read `params_file` (YAML; defaults when None), apply overrides, and validate."""
    raw: dict[str, Any] = {}
    origin = "defaults"
    if params_file is not None:
        origin = str(params_file)
        raw = _read_yaml(params_file)
    return build_config(apply_overrides(raw, overrides or []), origin)


def dump_config(config: AdaptflowConfig) -> str:
    """The YAML text of a config, as `params.yaml` holds it."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def flatten_config(config: AdaptflowConfig) -> dict[str, Any]:
    """`{"train.epochs": 3, ...}`: the config as dotted keys."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            flat[prefix] = node

    walk("", config.model_dump(mode="json"))
    return flat


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found; pass --params FILE or create params.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, split, model, ...), found {type(raw).__name__}")
    return raw


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        section = key.rpartition(".")[0]
        valid = ", ".join(_fields_at(section))
        where = f"in '{section}'" if section else "at the top level"
        return f"unknown key '{key}'; valid keys {where}: {valid}"
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "literal_error":
        message = message.replace("Input should be", "choose one of")
    return f"{key or 'params'}: {message}{shown}"


def _fields_at(section: str) -> list[str]:
    model: type[BaseModel] = AdaptflowConfig
    for part in filter(None, section.split(".")):
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _deep_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _deep_copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_deep_copy(value) for value in node]
    return node
