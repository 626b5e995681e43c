"""One typed configuration for the whole pipeline.

`params.yaml` is its serialised form (what DVC tracks), the Prefect flow takes it as its parameter (so the UI renders
a form for it) and the CLI reads `params.yaml` with `--set section.key=value` overrides on top.

`sections` holds the section models, `strategy` the strategy section, `pipeline` the AdaptflowConfig that holds
them all, and `loading` reads, overrides, validates and serialises it; import everything from `tasks.config`.
"""

from tasks.config.loading import (
    apply_overrides,
    build_config,
    dump_config,
    flatten_config,
    load_config,
    parse_override,
)
from tasks.config.pipeline import AdaptflowConfig
from tasks.config.sections import (
    CHECK_NAMES,
    DEFAULT_MODEL,
    DEVICE_CHOICES,
    DataConfig,
    EvaluationConfig,
    InferenceConfig,
    ModelConfig,
    OutputConfig,
    Severity,
    SimilarityConfig,
    SplitConfig,
    TrackingConfig,
    TrainConfig,
    ValidationConfig,
)
from tasks.config.strategy import SHIFT_STRATEGIES, Branch, ShiftStrategy, StrategyConfig

__all__ = [
    "CHECK_NAMES",
    "DEFAULT_MODEL",
    "DEVICE_CHOICES",
    "SHIFT_STRATEGIES",
    "AdaptflowConfig",
    "Branch",
    "DataConfig",
    "EvaluationConfig",
    "InferenceConfig",
    "ModelConfig",
    "OutputConfig",
    "Severity",
    "ShiftStrategy",
    "SimilarityConfig",
    "SplitConfig",
    "StrategyConfig",
    "TrackingConfig",
    "TrainConfig",
    "ValidationConfig",
    "apply_overrides",
    "build_config",
    "dump_config",
    "flatten_config",
    "load_config",
    "parse_override",
]
