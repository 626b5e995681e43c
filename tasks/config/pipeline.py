"""The whole pipeline's config: every section under its `params.yaml` key, in the order `params.yaml` lists them."""

from __future__ import annotations

from pydantic import model_validator

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

    @model_validator(mode="after")
    def _source_for_branch(self) -> AdaptflowConfig:
        if not self.data.has_source and self.strategy.branch in ("joint_training", "shift_adaptation"):
            raise ValueError(f"strategy.branch {self.strategy.branch} trains on the source domain but data.source is "
                             "null; set data.source, or strategy.branch auto or few_shot")
        return self
