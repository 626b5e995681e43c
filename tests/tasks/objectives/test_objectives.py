"""The auxiliary-objective protocol: what every objective does alike (errors, seeded target batches, resume)."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.config import TrainConfig
from tasks.errors import DataError
from tasks.models import load_tokenizer
from tasks.objectives.domain_adversarial import (
    AdversarialObjective,
    TargetBatches,
)
from tasks.objectives.masked_lm import (
    MaskedBatches,
    MaskedLMObjective,
)
from tasks.training import fine_tune
from tests.conftest import SAMPLE

LABELS = ("negative", "positive")


@pytest.mark.parametrize("objective", ["target_mlm", "domain_adversarial"])
def test_an_auxiliary_objective_whose_target_texts_have_no_word_is_a_one_line_data_error(tiny_model_dir, objective):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    texts = ("", "   ")
    with pytest.raises(DataError, match=rf"^{objective}: none of the 2 unlabelled target texts has a word") as error:
        if objective == "target_mlm":
            MaskedBatches(tokenizer, MaskedLMObjective(texts), 32, 4, seed=0)
        else:
            TargetBatches(tokenizer, texts, 32, 4, seed=0)
    assert "\n" not in str(error.value)


def test_the_masked_lm_and_the_adversary_draw_the_target_texts_in_different_orders(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    texts = tuple(pd.read_csv(SAMPLE / "kitchen.csv")["text"].head(64))
    masked = MaskedBatches(tokenizer, MaskedLMObjective(texts), 48, 16, seed=0).picked(0, 0)
    adversary = TargetBatches(tokenizer, texts, 48, 16, seed=0).picked(0, 0)
    assert len(masked) == len(adversary) == 16 and masked != adversary


@pytest.mark.parametrize("objective", ["mlm", "adversarial"])
def test_a_run_with_an_auxiliary_objective_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, tiny_model_dir,
                                                                                          objective):
    frame = pd.read_csv(SAMPLE / "kitchen.csv")
    data = pd.DataFrame({"text": frame["text"], "label": frame["label"]}).iloc[:64]
    target = tuple(frame["text"].iloc[64:128])
    auxiliary = {"objectives": [MaskedLMObjective(target) if objective == "mlm" else
                                AdversarialObjective(target, weight=1.0)]}  # its head and target batches resume too
    config = TrainConfig(epochs=2, batch_size=16, learning_rate=5e-3, freeze_embeddings=False, precision="fp32",
                         early_stopping_patience=0, keep_checkpoints=True)
    whole = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "whole",
                      tmp_path / "ck-whole", progress=False, **auxiliary)

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "resumed",
                  tmp_path / "ck", progress=False, on_epoch_end=stop_after_first, **auxiliary)
    resumed = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "resumed",
                        tmp_path / "ck", progress=False, **auxiliary)
    assert resumed.resumed_from_epoch == 1
    assert resumed.history[-1]["train_loss"] == pytest.approx(whole.history[-1]["train_loss"], rel=1e-5)

