"""Target augmentation: seeded in-domain edits that keep the labels."""

from __future__ import annotations

import pandas as pd

from tasks.augmentation import augment_frame, frequent_words


def test_augmentation_is_seeded_keeps_labels_and_uses_in_domain_words():
    frame = pd.DataFrame({"text": ["the kettle boils water fast and quietly"] * 2, "label": ["positive", "negative"]})
    vocabulary = frequent_words(["blender blender motor", "motor lid"])
    first = augment_frame(frame, 3, vocabulary, seed=1)
    assert len(first) == 6 and first["label"].tolist() == ["positive"] * 3 + ["negative"] * 3
    assert first.equals(augment_frame(frame, 3, vocabulary, seed=1))
    assert any(word in " ".join(first["text"]) for word in vocabulary)
    assert (first["text"] != frame["text"][0]).any()

