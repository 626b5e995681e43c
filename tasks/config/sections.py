"""The pipeline's sections: one pydantic model per `params.yaml` section (the strategy section is in `strategy.py`).

Every section forbids unknown keys and validates on assignment, so a misspelt key in `params.yaml` or `--set` fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where each data role comes from and which columns hold the text and the label."""

    source: Path | None = Field(
        Path("data/sample/books.csv"),
        description="Labelled source-domain data; null = no source domain: the labels come from the labelled target "
        "files and the few-shot path adapts on the labelled target texts alone (no shift measured, no source-only "
        "baseline).",
    )
    target: Path | None = Field(
        Path("data/sample/kitchen.csv"),
        description="One labelled target file, split by `split` into labelled-few / unlabelled / test.",
    )
    target_labeled: Path | None = Field(None, description="Labelled target data (instead of splitting `target`).")
    target_unlabeled: Path | None = Field(None, description="Unlabelled target texts (optional).")
    target_test: Path | None = Field(None, description="Labelled target test data (instead of splitting `target`).")
    text_columns: list[str] | None = Field(
        None, min_length=1, description="Joined to make the text; null: the table's own text column (text, review, "
        "sentence, content, ...), after `title` when it has one.")
    text_separator: str = Field(". ", description="Put between the text columns when joining them.")
    label_column: str = "label"
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl", "excel", "hf"] = "auto"
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="CSV field separator; null: "
                                  "detected from the header line (comma, semicolon, tab or |).")
    root: Path | None = Field(None, description="When set, every data file must resolve (links followed) inside "
                              "this directory; a path or link leading elsewhere is refused.")

    @property
    def has_source(self) -> bool:
        """False for `source: null`: no source domain, the few-shot path on the labelled target texts alone."""
        return self.source is not None

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
CHECK_NAMES = ("row_count", "text_is_string", "text_not_null", "text_not_blank", "text_has_words", "text_length", "no_control_chars", "mojibake_share",
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

    name_or_path: str = Field(DEFAULT_MODEL, description="A Hugging Face id or local directory; "
                              "all-MiniLM-L6-v2 (the default) and all-mpnet-base-v2 (the mpnet extra) load offline.")
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


DEVICE_CHOICES = r"auto|cpu|cuda(:\d+)?"  # train.device; tasks.devices resolves it


class TrainConfig(_Section):
    """The fine-tuning engine's settings."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    head_init: Literal["random", "probe"] = Field(
        "random", description="random = transformers' random head; probe = a new head starts as a logistic-regression "
        "probe fitted on the frozen encoder's features of the training set, then everything fine-tunes (LP-FT, Kumar "
        "et al. 2022). Not the default: on the embedded default it lost 19 points of target accuracy at 3 epochs "
        "(docs/configuration.md).")
    head_pooling: Literal["auto", "cls", "mean"] = Field(
        "auto", description="What a new classification head reads: cls = transformers' head for the architecture "
        "(BERT: the [CLS] token through its pooler); mean = the mean of the encoder's last hidden states; auto = "
        "mean for a sentence-transformers model that was trained with mean pooling (all-MiniLM-L6-v2), else cls.")
    head_learning_rate: float | None = Field(None, gt=0, description="Learning rate of the classification head; "
                                             "null = train.learning_rate.")
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
    batching: Literal["texts", "tokens"] = Field(
        "tokens", description="What makes a training batch: tokens = about batch_size x the training set's mean "
        "length in padded tokens, so a step takes many short texts or a few long ones and each does similar work "
        "(an epoch keeps about as many steps; a MiniLM epoch 1.2x faster on a CPU, the same accuracy on the dev "
        "splits: BENCHMARKS.md); texts = batch_size texts a step (length-grouped when group_by_length).")
    freeze_embeddings: bool = Field(True, description="Do not update the word-embedding matrix (half of MiniLM's "
                                    "weights; its AdamW update is pure cost on small data).")
    freeze_layers: int = Field(0, ge=0, description="Also freeze the whole embedding block and the lowest N "
                               "transformer layers: the backward pass stops above them (a speed lever; its accuracy "
                               "is in BENCHMARKS.md). 0 = train every layer.")
    attention_dropout: float | None = Field(
        0.0, ge=0.0, lt=1.0, description="The dropout on the attention probabilities while fine-tuning (the "
        "config's attention_probs_dropout_prob or attention_dropout); null = the model's own (0.1 for MiniLM). "
        "On a CPU drawing that random mask is a third of a MiniLM training step; 0.0 was chosen on the dev splits "
        "(the same accuracy, +0.03 point; BENCHMARKS.md).")
    attention: Literal["auto", "eager", "sdpa"] = Field(
        "auto", description="The encoder's attention kernel in training steps: eager (matrix products and a softmax) "
        "or sdpa (PyTorch's scaled_dot_product_attention); auto = eager on a CPU, where a MiniLM training step ran "
        "1.2x faster with it than with sdpa, and the model's own kernel on a GPU. Predicting always uses the model's "
        "own (sdpa: 2.4x faster than eager there; BENCHMARKS.md).")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="bf16 autocast for matrix work; auto = bf16 where the device computes bf16 natively "
        "(a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX), else fp32."
    )
    device: str = Field("auto", pattern=f"^({DEVICE_CHOICES})$", description="Where training, inference and "
                        "embedding run: auto = the CUDA GPU when torch sees one, else the CPU; or cpu, cuda, cuda:N.")
    seed: int = 0
    processes: int = Field(1, ge=1, description="Data-parallel training processes under torch.distributed, "
                           "launched as torchrun does: gloo on the CPU (each process gets an equal share of the "
                           "cores), NCCL on CUDA GPUs (one process per GPU). The gradient of each step is the whole "
                           "batch's, as with 1.")
    resume: bool = Field(True, description="Resume from the last complete checkpoint of an identical run.")
    keep_checkpoints: bool = Field(False, description="Keep epoch checkpoints after training finishes.")


class EvaluationConfig(_Section):
    """How the target test set is scored."""

    baseline: bool = Field(True, description="Also train a source-only baseline with the same engine.")
    batch_size: int = Field(64, ge=1)


class InferenceConfig(_Section):
    """What labels texts in evaluation and `adaptflow predict` (tasks.onnx_inference)."""

    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto", description="torch (the engine), onnx (ONNX Runtime, fp32) or onnx-int8 (its weights quantised to "
        "int8); auto = torch on a GPU or a CPU with native bf16, onnx-int8 on a CPU without (measured fastest there).")
    cache_dir: Path = Field(Path(".adaptflow-cache/onnx"), description="Where ONNX exports are kept, by weights hash.")
    # rule 12 (2026-12-05, BENCHMARKS.md "Int8 inference"): on the dev texts of the six Amazon pairs, 0.10 brought
    # int8's agreement with fp32 torch from 99.62 % to 99.93 % (worst pair 99.4 to 99.8 %), re-checking 1.4 % of the
    # texts, in 1.10x the time of int8 alone
    int8_recheck: float = Field(0.10, ge=0, le=1, description="onnx-int8 only: texts whose two likeliest labels' "
                                "int8 probabilities are closer than this are labelled again by the fp32 ONNX graph "
                                "of the same export; 0 = int8 alone.")


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
    promotion_margin: float = Field(0.002, ge=0, description="Target macro-F1 must beat the champion's, both "
                                    "scored on this run's target test set, by this to take the champion alias.")
    promotion_alpha: float = Field(0.05, gt=0, le=1, description="...and by more than chance: the one-sided "
                                   "paired-bootstrap p-value of the macro-F1 difference must be below this.")
    max_source_drop: float = Field(0.02, ge=0, description="Largest source-domain macro-F1 drop against the "
                                   "champion (both on this run's source hold-out) that still allows promotion.")
