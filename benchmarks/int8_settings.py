"""Which dynamic-int8 settings keep the fp32 model's labels, chosen without the test sets: each variant's agreement
with the fp32 torch model on unlabelled target texts of the six ordered pairs.

    python benchmarks/int8_settings.py --data ../shared/data/amazon-msd --json int8-settings.json [--texts 1000]

Uses the source-only models that `int8_accuracy.py` trains (`--work`, default `benchmarks/.int8-work`; run that
first). `tasks.onnx_inference.INT8` is the variant with the highest mean agreement here; `int8_accuracy.py` then
reports its accuracy drop on the test sets once. The JSON is rewritten after every pair.
"""

from __future__ import annotations

import argparse
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
from tasks.onnx_inference import Int8Settings, OnnxClassifier, _export, quantise

FFN_OUTPUT = r"layer\.\d+/output/dense"  # BERT's feed-forward output MatMul of each layer
VARIANTS = {
    "uint8 per tensor": Int8Settings("QUInt8", False, ""),
    "uint8 per channel": Int8Settings("QUInt8", True, ""),
    "uint8 per tensor, FFN outputs fp32": Int8Settings("QUInt8", False, FFN_OUTPUT),
    "int8 per channel, FFN outputs fp32": Int8Settings("QInt8", True, FFN_OUTPUT),
}


def quantised(fp32: Path, settings: Int8Settings, path: Path) -> Path:
    if not path.is_file():
        quantise(fp32, path, settings)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--texts", type=int, default=1000, help="unlabelled target texts per pair")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures: dict = {"texts": args.texts, "pairs": {}}
    for source in DOMAINS:
        model_dir = args.work / f"source-only-{source}-seed0"
        if not (model_dir / "model.safetensors").is_file():
            print(f"int8 settings: {model_dir} is missing; run benchmarks/int8_accuracy.py first", file=sys.stderr)
            return 1
        variants_dir = args.work / "int8-settings" / source
        variants_dir.mkdir(parents=True, exist_ok=True)
        fp32 = variants_dir / "model.onnx"
        if not fp32.is_file():
            _export(model_dir, fp32)
        tokenizer, model = load_tokenizer(str(model_dir)), load_classifier_dir(str(model_dir)).float().eval()
        for target in (domain for domain in DOMAINS if domain != source):
            config = pair_config(args.data, source, target, "full", 0, args.work / f"{source}-{target}")
            texts = load_roles(config.data, config.split).target_unlabeled["text"].tolist()[:args.texts]
            reference = predict(model, tokenizer, texts, config.model.max_length, 64, "fp32").labels
            row = {}
            for index, (name, settings) in enumerate(VARIANTS.items()):
                session = OnnxClassifier(quantised(fp32, settings, variants_dir / f"variant-{index}.onnx"), model.config)
                started = time.perf_counter()
                labels = predict(session, tokenizer, texts, config.model.max_length, 64, "fp32").labels
                row[name] = {"agreement": round(float(np.mean(np.array(labels) == np.array(reference))), 4),
                             "seconds": round(time.perf_counter() - started, 2)}
            figures["pairs"][f"{source}->{target}"] = row
            print(f"{source} -> {target}: " + ", ".join(f"{n} {r['agreement']:.4f}" for n, r in row.items()), flush=True)
            figures["mean_agreement"] = {name: round(float(np.mean([r[name]["agreement"] for r in
                                                                    figures["pairs"].values()])), 4)
                                         for name in VARIANTS}
            if args.json:
                temporary = args.json.with_suffix(".tmp")
                temporary.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
                temporary.replace(args.json)
    print("mean agreement: " + json.dumps(figures["mean_agreement"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
