"""Vocabulary substitution: make source texts read more like the target domain, without any download.

Words much more frequent in the source than in the target ("novel", "author") are mapped to target-specific words of
the same role, the nearest by the foundation model's embedding of each word ("blender", "manufacturer"), and a share
of the source texts has them replaced. The label is kept: sentiment words are shared by both domains and are not
domain-specific, so they are not mapped.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import numpy as np
import pandas as pd

from tasks.augmentation import STOPWORDS
from tasks.similarity import words

_TOKEN = re.compile(r"[A-Za-z]+")


def domain_specific_words(first: list[str], second: list[str], top: int, min_count: int = 3) -> list[str]:
    """The `top` words most over-represented in `first` against `second` (smoothed log-ratio of relative
    frequencies), most specific first; stopwords, short words and words seen fewer than `min_count` times skipped."""
    counts_first = Counter(w for text in first for w in words(text))
    counts_second = Counter(w for text in second for w in words(text))
    total_first, total_second = max(sum(counts_first.values()), 1), max(sum(counts_second.values()), 1)
    vocabulary = len(set(counts_first) | set(counts_second)) or 1

    def score(word: str) -> float:
        p_first = (counts_first[word] + 1) / (total_first + vocabulary)
        p_second = (counts_second[word] + 1) / (total_second + vocabulary)
        return math.log(p_first / p_second)

    candidates = [w for w, n in counts_first.items()
                  if n >= min_count and w.isalpha() and len(w) > 2 and w not in STOPWORDS]
    ranked = sorted(candidates, key=lambda w: (-score(w), w))
    return [w for w in ranked if score(w) > 0][:top]


def label_neutral(candidates: list[str], texts: list[str], labels: list[str], max_skew: float = 0.2) -> list[str]:
    """The candidates that carry no label: among the texts containing the word, every label's share is within
    `max_skew` of its share overall. Sentiment words ("boring", "excellent") are dropped, so that substitution never
    maps one to a word of the other polarity (antonyms sit close together in embedding space)."""
    overall = Counter(labels)
    total = len(labels) or 1
    containing: dict[str, Counter[str]] = {word: Counter() for word in candidates}
    for text, label in zip(texts, labels, strict=True):
        for word in set(words(text)) & containing.keys():
            containing[word][label] += 1
    kept = []
    for word in candidates:
        seen = sum(containing[word].values())
        if seen == 0 or all(abs(containing[word][label] / seen - overall[label] / total) <= max_skew
                            for label in overall):
            kept.append(word)
    return kept


def substitution_map(source_words: list[str], target_words: list[str], source_vectors: np.ndarray,
                     target_vectors: np.ndarray, min_similarity: float) -> dict[str, str]:
    """Each source word -> its most similar target word (cosine of the vectors), if at least `min_similarity`."""
    if not source_words or not target_words:
        return {}
    a = source_vectors / np.maximum(np.linalg.norm(source_vectors, axis=1, keepdims=True), 1e-12)
    b = target_vectors / np.maximum(np.linalg.norm(target_vectors, axis=1, keepdims=True), 1e-12)
    similarity = a @ b.T
    best = similarity.argmax(axis=1)
    return {word: target_words[j] for word, j, row in zip(source_words, best, similarity, strict=True)
            if row[j] >= min_similarity and target_words[j] != word}


def substitute_text(text: str, mapping: dict[str, str]) -> str:
    """`text` with every mapped word replaced (a capitalised word stays capitalised)."""
    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        new = mapping.get(word.lower())
        if new is None:
            return word
        return new.capitalize() if word[0].isupper() else new

    return _TOKEN.sub(replace, text)


def substitute_frame(frame: pd.DataFrame, mapping: dict[str, str], share: float, seed: int) -> tuple[pd.DataFrame, int]:
    """A copy of `frame` where a seeded `share` of its rows have their texts substituted; (copy, rows changed)."""
    if not mapping or share <= 0 or frame.empty:
        return frame.copy(), 0
    rng = random.Random(seed)
    chosen = [i for i in range(len(frame)) if rng.random() < share]
    texts = frame["text"].tolist()
    changed = 0
    for i in chosen:
        new = substitute_text(texts[i], mapping)
        changed += new != texts[i]
        texts[i] = new
    return frame.assign(text=texts), changed
