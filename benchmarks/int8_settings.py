"""Which dynamic-int8 settings keep the fp32 model's labels, chosen without the test sets: each variant's agreement
with the fp32 torch model on unlabelled target texts of the six ordered pairs.

    python benchmarks/int8_settings.py --data ../shared/data/amazon-msd --json int8-settings.json [--texts 1000] \
        [--variants K,L]

Uses the source-only models that `int8_accuracy.py` trains (`--work`, default `benchmarks/.int8-work`; run that
first). `tasks.onnx_inference.INT8` and the export are chosen from the variants here by a rule stated before
the rows are read (BENCHMARKS.md); `int8_accuracy.py` then reports the accuracy drop on the test sets once. The
JSON is rewritten after every pair.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from adaptation import DEFAULT_DATA, DOMAINS, pair_config
from int8_accuracy import WORK

from tasks.inference import predict
from tasks.loading import load_roles
from tasks.models import load_classifier_dir, load_tokenizer
from tasks.onnx_inference import INT8_BATCH, INT8_RECHECK, Int8Settings, OnnxClassifier, _export, quantise

RECHECK = f"L K, close calls (gap under {INT8_RECHECK:.2f}) re-checked by the fp32 graph (shipped)"
FFN_OUTPUT = r"layer\.\d+/output/dense"  # BERT's feed-forward output MatMul of each layer
ATTENTION_OUTPUT = r"layer\.\d+/attention/output/dense"  # the attention block's output projection
EMBEDDINGS = r"EmbedLayerNormalization"  # the fused embeddings (their tables would be quantised too)
FUSED_ATTENTION = r"^Attention_\d+$"  # a fused graph's attention node of each layer: query, key, value in one
ROUND_2 = f"{FFN_OUTPUT}|{ATTENTION_OUTPUT}"
# Round 1 (2026-12-03) compared uint8/int8, per tensor/per channel and FFN outputs in fp32; round 2 left more in fp32
# on top of that (BENCHMARKS.md). Round 3 (2026-12-05) keeps round 2's settings and varies the exported graph: the
# sdpa kernel's trace as before, the eager kernel's, and the eager graph fused by ONNX Runtime's transformer
# optimizer (one Attention node per layer), with the fused embeddings and attention quantised or not.
VARIANTS = {
    "A sdpa export, unfused (before)": ("sdpa", False, Int8Settings("QInt8", True, ROUND_2)),
    "B eager export, unfused": ("eager", False, Int8Settings("QInt8", True, ROUND_2)),
    "C eager, fused, embeddings fp32": ("eager", True, Int8Settings("QInt8", True, f"{ROUND_2}|{EMBEDDINGS}")),
    "D eager, fused, embeddings and attention fp32": ("eager", True, Int8Settings(
        "QInt8", True, f"{ROUND_2}|{EMBEDDINGS}|{FUSED_ATTENTION}")),
    "E eager, fused, embeddings int8": ("eager", True, Int8Settings("QInt8", True, ROUND_2)),
    # round 4 (2026-12-05): less left in fp32 on the fused graph
    "F eager, fused, FFN outputs fp32 (round 1's)": ("eager", True, Int8Settings("QInt8", True, FFN_OUTPUT)),
    "G eager, fused, every weight int8": ("eager", True, Int8Settings("QInt8", True, "")),
    # rule 7 (2026-12-05): F with the feed-forward input's outlier channels split (tasks.outlier_channels) at 3, 5
    # and 8 times the median channel; J was shipped until rule 11
    "H F, outlier channels split at 3x": ("eager", True, Int8Settings("QInt8", True, FFN_OUTPUT, 3.0)),
    "I F, outlier channels split at 5x": ("eager", True, Int8Settings("QInt8", True, FFN_OUTPUT, 5.0)),
    "J F, outlier channels split at 8x": ("eager", True, Int8Settings("QInt8", True, FFN_OUTPUT, 8.0)),
    # rule 11 (2026-12-05): J with per-token activation scales on every int8 MatMul, the attention's QKV projection
    # included (tasks.token_scales), and the feed-forward output projection in int8 too, its input split at 8x as
    # well; K is the shipped INT8. Rules 8-10's variants were probes on the way there (BENCHMARKS.md).
    "K J, per-token scales, FFN output int8 (the shipped graph)": ("eager", True, Int8Settings(
        "QInt8", True, "", 8.0, True)),
    # rule 12 (2026-12-05): K, with the texts whose two likeliest labels are closer than inference.int8_recheck
    # (0.10) labelled again by the fp32 graph of the same export (RECHECKED; shipped)
    RECHECK: ("eager", True, Int8Settings("QInt8", True, "", 8.0, True)),
}
RECHECKED = {RECHECK: INT8_RECHECK}  # the others: int8 alone


def digest(settings: Int8Settings) -> str:
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:12]


def quantised(fp32: Path, settings: Int8Settings, path: Path, tokenizer) -> Path:
    if not path.is_file():
        quantise(fp32, path, settings, tokenizer)
    return path


SAMPLE = "seeded random sample of the pool, seed 0"


def dev_sample(pool: list[str], n: int, seed: int = 0) -> list[str]:
    """`n` texts of the unlabelled target pool, drawn at random (seeded) from all of it, in pool order. The pool
    keeps its file's order, and the Amazon files hold one label's reviews after the other's: until 2026-12-05 the
    first 1,000 were taken, about four fifths of them of the first label (BENCHMARKS.md, "Int8 inference")."""
    chosen = np.random.default_rng(seed).choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[index] for index in sorted(chosen)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--texts", type=int, default=1000, help="unlabelled target texts per pair")
    parser.add_argument("--json", type=Path, help="rewritten after every pair; pairs it holds already are kept")
    parser.add_argument("--sources", default=",".join(DOMAINS), help="source domains to score (comma-separated)")
    parser.add_argument("--variants", default=",".join(name.split()[0] for name in VARIANTS),
                        help="the variants' letters to score (comma-separated; default all)")
    args = parser.parse_args(argv)
    variants = {name: VARIANTS[name] for name in VARIANTS if name.split()[0] in args.variants.split(",")}
    if not variants:
        print(f"int8 settings: --variants {args.variants}: name some of "
              f"{','.join(name.split()[0] for name in VARIANTS)}", file=sys.stderr)
        return 1
    figures: dict = {"texts": args.texts, "sample": SAMPLE, "texts_per_run": INT8_BATCH, "pairs": {}}
    if args.json and args.json.is_file():
        figures = json.loads(args.json.read_text(encoding="utf-8"))
        if (figures.get("sample"), figures.get("texts_per_run")) != (SAMPLE, INT8_BATCH):
            print(f"int8 settings: {args.json} was measured on the first texts of each pool or in other calls than "
                  f"the shipped {INT8_BATCH} texts; give a new --json", file=sys.stderr)
            return 1
    for source in args.sources.split(","):
        model_dir = args.work / f"source-only-{source}-seed0"
        if not (model_dir / "model.safetensors").is_file():
            print(f"int8 settings: {model_dir} is missing; run benchmarks/int8_accuracy.py first", file=sys.stderr)
            return 1
        variants_dir = args.work / "int8-settings" / source
        variants_dir.mkdir(parents=True, exist_ok=True)
        graphs = {}
        for attention, fuse, _ in variants.values():
            graphs[attention, fuse] = variants_dir / f"model-{attention}{'-fused' if fuse else ''}.onnx"
            if not graphs[attention, fuse].is_file():
                _export(model_dir, graphs[attention, fuse], attention, fuse)
        tokenizer, model = load_tokenizer(str(model_dir)), load_classifier_dir(str(model_dir)).float().eval()
        for target in (domain for domain in DOMAINS if domain != source):
            if set(figures["pairs"].get(f"{source}->{target}", {})) >= set(variants):
                continue
            config = pair_config(args.data, source, target, "full", 0, args.work / f"{source}-{target}")
            texts = dev_sample(load_roles(config.data, config.split).target_unlabeled["text"].tolist(), args.texts)
            reference = predict(model, tokenizer, texts, config.model.max_length, 64, "fp32").labels
            row = dict(figures["pairs"].get(f"{source}->{target}", {}))
            for name, (attention, fuse, settings) in variants.items():
                if name in row:  # measured by an earlier run of this script
                    continue
                fp32 = graphs[attention, fuse]
                variant = variants_dir / f"variant-{fp32.stem}-{digest(settings)}.onnx"
                graph = quantised(fp32, settings, variant, tokenizer)
                margin = RECHECKED.get(name, 0.0)
                recheck = OnnxClassifier(fp32, model.config) if margin else None
                session = OnnxClassifier(graph, model.config, texts_per_run=INT8_BATCH,  # as shipped
                                         recheck=recheck, margin=margin)
                started = time.perf_counter()
                labels = predict(session, tokenizer, texts, config.model.max_length, 64, "fp32").labels
                row[name] = {"agreement": round(float(np.mean(np.array(labels) == np.array(reference))), 4),
                             "seconds": round(time.perf_counter() - started, 2)}
            figures["pairs"][f"{source}->{target}"] = row
            print(f"{source} -> {target}: " + ", ".join(f"{n} {r['agreement']:.4f}" for n, r in row.items()), flush=True)
            measured = {name: [r[name] for r in figures["pairs"].values() if name in r] for name in VARIANTS}
            figures["mean_agreement"] = {name: round(float(np.mean([r["agreement"] for r in rows])), 4)
                                         for name, rows in measured.items() if rows}
            figures["seconds"] = {name: round(sum(r["seconds"] for r in rows), 1)
                                  for name, rows in measured.items() if rows}
            if args.json:
                temporary = args.json.with_suffix(".tmp")
                temporary.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
                temporary.replace(args.json)
    print("mean agreement: " + json.dumps(figures["mean_agreement"]))
    print("seconds: " + json.dumps(figures["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
