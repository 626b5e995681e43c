"""Domain-shift measures between source and target (pure functions on embeddings, texts and labels).

- `mmd`: squared maximum mean discrepancy, RBF kernel with the median-heuristic bandwidth, permutation p-value;
- `proxy_a_distance`: 2 (1 - 2 err), err the cross-validated error of a linear domain classifier;
- `js_divergence`: Jensen-Shannon divergence (base 2) of the unigram distributions;
- `oov_rate`: share of target tokens whose word never occurs in the source;
- `label_shift`: total variation distance between the label distributions (where target labels exist).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def mmd_rbf(x: np.ndarray, y: np.ndarray, permutations: int = 200, seed: int = 0) -> dict[str, float]:
    """MMD² (biased estimator), its bandwidth, and the permutation-test p-value."""
    joint = np.vstack([x, y]).astype(np.float64)
    squared = np.sum(joint**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2.0 * joint @ joint.T, 0.0)
    upper = distances[np.triu_indices(len(joint), k=1)]
    bandwidth = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    kernel = np.exp(-distances / bandwidth)
    # MMD² = zᵀ K z with z = 1/n on the source rows and -1/m on the target rows; a permutation permutes z, so all
    # permutations are one matrix product.
    n, m = len(x), len(y)
    z = np.r_[np.full(n, 1.0 / n), np.full(m, -1.0 / m)]
    rng = np.random.default_rng(seed)
    shuffled = np.stack([rng.permutation(z) for _ in range(permutations)], axis=1) if permutations else z[:, None]
    observed = float(z @ kernel @ z)
    null = np.einsum("ip,ip->p", shuffled, kernel @ shuffled) if permutations else np.array([])
    exceed = int(np.sum(null >= observed))
    return {"mmd2": observed, "p_value": (exceed + 1) / (permutations + 1), "bandwidth": bandwidth}


def proxy_a_distance(x: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5) -> dict[str, float]:
    """Proxy A-distance from the cross-validated error of a logistic-regression domain classifier."""
    # scikit-learn is imported where it is used, so that stage processes which never call it start faster
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    features = np.vstack([x, y])
    domains = np.r_[np.zeros(len(x)), np.ones(len(y))]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(LogisticRegression(max_iter=1000, C=1.0), features, domains, cv=splitter)
    error = float(np.mean(predicted != domains))
    return {"proxy_a_distance": 2.0 * (1.0 - 2.0 * error), "domain_error": error}


def js_divergence(source_texts: list[str], target_texts: list[str]) -> float:
    """Jensen-Shannon divergence (bits, 0..1) between the unigram distributions of the two corpora."""
    source, target = Counter(), Counter()
    for text in source_texts:
        source.update(words(text))
    for text in target_texts:
        target.update(words(text))
    vocabulary = sorted(set(source) | set(target))
    if not vocabulary:
        return 0.0
    p = np.array([source[w] for w in vocabulary], dtype=float)
    q = np.array([target[w] for w in vocabulary], dtype=float)
    p, q = p / max(p.sum(), 1), q / max(q.sum(), 1)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def oov_rate(source_texts: list[str], target_texts: list[str]) -> float:
    """Share of target word tokens whose word does not occur in the source."""
    known = {word for text in source_texts for word in words(text)}
    target = [word for text in target_texts for word in words(text)]
    return float(np.mean([word not in known for word in target])) if target else 0.0


def label_shift(source_labels: list[str], target_labels: list[str]) -> float:
    """Total variation distance between the two label distributions (0 = same, 1 = disjoint)."""
    if not source_labels or not target_labels:
        return 0.0
    source, target = Counter(source_labels), Counter(target_labels)
    labels = set(source) | set(target)
    return 0.5 * sum(abs(source[l] / len(source_labels) - target[l] / len(target_labels)) for l in labels)


def measure_domain_shift(source_embeddings: np.ndarray, target_embeddings: np.ndarray, source_texts: list[str],
                         target_texts: list[str], source_labels: list[str] | None = None,
                         target_labels: list[str] | None = None, permutations: int = 200,
                         seed: int = 0) -> dict[str, float]:
    """Every measure for one source/target pair, as a flat dict of floats."""
    measures = {}
    measures.update(mmd_rbf(source_embeddings, target_embeddings, permutations, seed))
    measures.update(proxy_a_distance(source_embeddings, target_embeddings, seed))
    measures["js_divergence"] = js_divergence(source_texts, target_texts)
    measures["oov_rate"] = oov_rate(source_texts, target_texts)
    if source_labels and target_labels:
        measures["label_shift"] = label_shift(source_labels, target_labels)
    return {key: round(float(value), 6) for key, value in measures.items()}
