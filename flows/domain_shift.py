"""The foundation model's view of two text samples: embeddings (cached on disk) and the domain-shift measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks.config import AdaptflowConfig
from tasks.devices import placement
from tasks.embeddings import embed_texts
from tasks.evaluation import plot_domain_embeddings
from tasks.similarity import measure_domain_shift


def sample_texts(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=min(size, len(frame)), random_state=seed).reset_index(drop=True)


def embed_pair(config: AdaptflowConfig, first: list[str], second: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of two text lists in one call: one cache read and at most one model load."""
    device, precision = placement(config.train)
    vectors = embed_texts(first + second, config.model.name_or_path, config.similarity.max_length,
                          config.similarity.cache_dir, precision=precision, device=str(device))
    return vectors[: len(first)], vectors[len(first):]


def measure_pair(config: AdaptflowConfig, source: pd.DataFrame, target: pd.DataFrame,
                 plot: Path | None = None) -> dict[str, float]:
    """The domain-shift measures on seeded samples of both sides (embeddings from the cache); plots the domains."""
    sim = config.similarity
    source_sample, target_sample = sample_texts(source, sim.sample_size, sim.seed), \
        sample_texts(target, sim.sample_size, sim.seed)
    source_vectors, target_vectors = embed_pair(config, source_sample["text"].tolist(),
                                                target_sample["text"].tolist())
    target_labels = target_sample["label"].dropna().tolist() if "label" in target_sample else []
    measures = measure_domain_shift(source_vectors, target_vectors, source_sample["text"].tolist(),
                                    target_sample["text"].tolist(), source_sample["label"].tolist(),
                                    target_labels, sim.permutations, sim.seed)
    measures.update(n_source=len(source_sample), n_target=len(target_sample))
    if plot is not None:
        plot_domain_embeddings(source_vectors, target_vectors, plot)
    return measures


def plot_target(config: AdaptflowConfig, target: pd.DataFrame, plot: Path) -> Path:
    """The target sample's embeddings alone, for a run without a source domain (the same plot, one colour)."""
    sample = sample_texts(target, config.similarity.sample_size, config.similarity.seed)
    _, vectors = embed_pair(config, [], sample["text"].tolist())
    return plot_domain_embeddings(vectors[:0], vectors, plot)
