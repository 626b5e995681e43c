"""Print the matrix of domain-shift measures between the real domains, and the decision the thresholds give.

    python benchmarks/calibrate_similarity.py --data ../shared/data/amazon-msd

The default thresholds in `tasks/config.py` (similarity.*_max) were chosen from this matrix: electronics <-> kitchen
must come out similar, books <-> electronics and books <-> kitchen dissimilar, in both directions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from tasks.branching import decide_branch
from tasks.config import DataConfig, SimilarityConfig
from tasks.devices import resolve_precision
from tasks.embeddings import embed_texts
from tasks.loading import read_examples
from tasks.similarity import measure_domain_shift

DEFAULT_DATA = Path(os.environ.get("ADAPTFLOW_DATA_DIR", "../shared/data/amazon-msd"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--domains", default="books,electronics,kitchen")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"calibration: data directory {args.data} not found; pass --data or set ADAPTFLOW_DATA_DIR",
              file=sys.stderr)
        return 1
    config = SimilarityConfig()
    precision = resolve_precision("auto")
    texts, labels, vectors = {}, {}, {}
    rng = np.random.default_rng(config.seed)
    for domain in args.domains.split(","):
        frame = read_examples(args.data / f"{domain}.csv", DataConfig())
        take = rng.permutation(len(frame))[: config.sample_size]
        texts[domain] = frame["text"].iloc[take].tolist()
        labels[domain] = frame["label"].iloc[take].tolist()
        started = time.perf_counter()
        vectors[domain] = embed_texts(texts[domain], args.model, config.max_length, config.cache_dir,
                                      precision=precision)
        print(f"embedded {len(take)} {domain} texts in {time.perf_counter() - started:.1f} s", flush=True)
    rows = []
    for source, target in itertools.permutations(args.domains.split(","), 2):
        measures = measure_domain_shift(vectors[source], vectors[target], texts[source], texts[target],
                                        labels[source], labels[target], config.permutations, config.seed)
        decision = decide_branch("auto", measures, config)
        rows.append({"source": source, "target": target, **measures, "similar": decision.similar})
    keys = ["mmd2", "p_value", "proxy_a_distance", "domain_error", "js_divergence", "oov_rate", "label_shift"]
    print("\n| source | target | " + " | ".join(keys) + " | decision |")
    print("|---|---|" + "---|" * len(keys) + "---|")
    for row in rows:
        values = " | ".join(f"{row[k]:.4f}" for k in keys)
        print(f"| {row['source']} | {row['target']} | {values} | {'similar' if row['similar'] else 'dissimilar'} |")
    print(f"\nthresholds: mmd2 <= {config.mmd2_max}, proxy_a_distance <= {config.proxy_a_distance_max}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
