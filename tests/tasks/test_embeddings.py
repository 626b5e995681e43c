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




def test_bf16_embeddings_are_close_to_fp32_and_never_read_from_another_precisions_cache(tmp_path, tiny_model_dir):
    import hashlib

    from tasks.embeddings import _write_shard, embed_texts, text_key

    texts = ["good kettle", "bad book", "a pan that lasted ten years of daily use"]
    # vectors an earlier version cached for bf16 autocast, under the key it used: not this model-in-bf16's vectors
    stale = tmp_path / hashlib.sha256(f"{tiny_model_dir}|16|bf16".encode()).hexdigest()[:16]
    _write_shard(stale, {text_key(text): np.full(32, 0.5, dtype=np.float32) for text in texts})
    full = embed_texts(texts, str(tiny_model_dir), 16, tmp_path)
    half = embed_texts(texts, str(tiny_model_dir), 16, tmp_path, precision="bf16")
    assert not np.array_equal(half, full)  # computed in bf16, not the fp32 vectors read back from the cache
    assert np.allclose((half * full).sum(axis=1), 1.0, atol=1e-2) and half.dtype == np.float32
    assert len({path.name for path in tmp_path.iterdir()}) == 3  # fp32, bf16 and the stale one, left alone
