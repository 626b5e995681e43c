"""Text augmentation without any download: token-level edits that keep the label (EDA-style).

Random swap, random deletion and insertion of in-domain words (frequent target words), `copies` new texts per text.
"""

from __future__ import annotations

import random
from collections import Counter

import pandas as pd

from tasks.similarity import words

STOPWORDS = frozenset([
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "for", "with", "is", "was", "are",
    "were", "be", "been", "it", "this", "that", "i", "you", "he", "she", "we", "they", "my", "your", "his", "her",
    "our", "their", "not", "no", "very", "so", "as", "by", "from",
])


def frequent_words(texts: list[str], top: int = 200) -> list[str]:
    """The most frequent non-stopword words of a corpus (the in-domain vocabulary to insert)."""
    counts = Counter(word for text in texts for word in words(text) if word not in STOPWORDS and len(word) > 2)
    return [word for word, _ in counts.most_common(top)]


def augment_text(text: str, rng: random.Random, vocabulary: list[str], rate: float = 0.1) -> str:
    """One edited copy: a few swaps, deletions and in-domain insertions (about `rate` of the tokens each)."""
    tokens = text.split()
    if len(tokens) < 2:
        return text
    edits = max(1, int(len(tokens) * rate))
    for _ in range(edits):
        i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    tokens = [token for token in tokens if rng.random() > rate] or tokens[:1]
    for _ in range(edits if vocabulary else 0):
        tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(vocabulary))
    return " ".join(tokens)


def augment_frame(frame: pd.DataFrame, copies: int, vocabulary: list[str], seed: int, rate: float = 0.1) -> pd.DataFrame:
    """`copies` augmented rows per row of `frame` (same labels and other columns); the input is not changed."""
    if copies == 0 or frame.empty:
        return frame.iloc[0:0].copy()
    rng = random.Random(seed)
    rows = []
    for _, row in frame.iterrows():
        for _ in range(copies):
            rows.append({**row.to_dict(), "text": augment_text(row["text"], rng, vocabulary, rate)})
    return pd.DataFrame(rows, columns=frame.columns)
