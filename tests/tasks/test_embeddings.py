"""Foundation-model embeddings: cached on disk by content, a damaged cache shard ignored."""

from __future__ import annotations

import numpy as np


def test_embeddings_are_cached_by_content(tmp_path, tiny_model_dir, monkeypatch):
    from tasks import embeddings

    first = embeddings.embed_texts(["good kettle", "bad book"], str(tiny_model_dir), 16, tmp_path)
    assert first.shape == (2, 32) and np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)

    def no_compute(*args, **kwargs):
        raise AssertionError("cached texts were embedded again")

    monkeypatch.setattr(embeddings, "_compute", no_compute)
    again = embeddings.embed_texts(["bad book", "good kettle"], str(tiny_model_dir), 16, tmp_path)
    assert np.allclose(again, first[::-1])


def test_a_damaged_cache_shard_is_ignored(tmp_path, tiny_model_dir):
    from tasks.embeddings import embed_texts

    first = embed_texts(["good kettle"], str(tiny_model_dir), 16, tmp_path)
    for shard in tmp_path.rglob("shard-*.npz"):
        shard.write_bytes(b"not a zip")
    assert np.allclose(embed_texts(["good kettle"], str(tiny_model_dir), 16, tmp_path), first, atol=1e-5)

