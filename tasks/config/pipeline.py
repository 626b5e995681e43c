"""The whole pipeline's config: every section under its `params.yaml` key, in the order `params.yaml` lists them."""

from __future__ import annotations

from tasks.config.sections import (
    DataConfig,
    EvaluationConfig,
    InferenceConfig,
    ModelConfig,
    OutputConfig,
    SimilarityConfig,
    SplitConfig,
    TrackingConfig,
    TrainConfig,
    ValidationConfig,
    _Section,
)
from tasks.config.strategy import StrategyConfig


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
    inference: InferenceConfig = InferenceConfig()
    output: OutputConfig = OutputConfig()
    tracking: TrackingConfig = TrackingConfig()
