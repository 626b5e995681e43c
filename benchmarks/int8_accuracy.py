"""What int8 inference costs in accuracy: the source-only model of each domain, scored on the other two domains'
400-text target test sets by the torch engine (at its precision, and in fp32: the weights the export starts from)
and by its int8 ONNX export as shipped (close calls labelled again by the fp32 graph: `inference.int8_recheck`),
side by side.

    python benchmarks/int8_accuracy.py --data ../shared/data/amazon-msd --json int8.json [--work DIR]

Three fine-tunes (books, electronics, kitchen as the source, the adaptation benchmark's full budget and seed) give
the six ordered pairs. The trained models stay in `--work` (default `benchmarks/.int8-work`), so a re-run only
re-scores; the JSON is rewritten after every pair. `throughput.py --int8-accuracy` runs this and adds the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from adaptation import DEFAULT_DATA, DOMAINS, pair_config

from tasks.devices import placement
from tasks.evaluation import compute_metrics
from tasks.inference import predict
from tasks.loading import load_roles
from tasks.models import load_tokenizer
from tasks.onnx_inference import INT8_RECHECK, load_for_inference
from tasks.training import fine_tune

WORK = Path(__file__).resolve().parent / ".int8-work"


def int8_drops(data: Path, work: Path, seed: int = 0, out: Path | None = None,
               pairs: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Per ordered pair: accuracy of the torch model and of its int8 export on the target test set, and the drop."""
    pairs = pairs or [(a, b) for a in DOMAINS for b in DOMAINS if a != b]
    figures: dict[str, Any] = {"pairs": {}, "seed": seed, "int8_recheck": INT8_RECHECK}  # as shipped
    for source, target in pairs:
        config = pair_config(data, source, target, "full", seed, work / f"{source}-{target}")
        roles = load_roles(config.data, config.split)
        started = time.perf_counter()
        trained = fine_tune(roles.source_train, roles.target_validation.iloc[0:0], roles.labels,
                            config.model.name_or_path, config.model.max_length, config.train,
                            work / f"source-only-{source}-seed{seed}", work / "checkpoints", progress=True)
        train_seconds = time.perf_counter() - started
        device, precision = placement(config.train)
        tokenizer, texts = load_tokenizer(str(trained.model_dir)), roles.target_test["text"].tolist()
        models = {backend: load_for_inference(trained.model_dir, roles.labels, backend, work / "onnx", device,
                                              INT8_RECHECK) for backend in ("torch", "onnx-int8")}
        scored = {}
        for name, backend, at in (("torch", "torch", precision), ("torch-fp32", "torch", "fp32"),
                                  ("onnx-int8", "onnx-int8", precision)):
            predicted = predict(models[backend], tokenizer, texts, config.model.max_length, 64, at)
            scored[name] = compute_metrics(roles.target_test["label"].tolist(), predicted.labels, roles.labels)
        drop = 100 * (scored["torch"]["accuracy"] - scored["onnx-int8"]["accuracy"])
        drop_fp32 = 100 * (scored["torch-fp32"]["accuracy"] - scored["onnx-int8"]["accuracy"])
        figures["pairs"][f"{source}->{target}"] = {
            "torch_accuracy": round(scored["torch"]["accuracy"], 4), "torch_precision": precision,
            "torch_fp32_accuracy": round(scored["torch-fp32"]["accuracy"], 4),
            "int8_accuracy": round(scored["onnx-int8"]["accuracy"], 4), "drop_points": round(drop, 2),
            "drop_points_vs_fp32": round(drop_fp32, 2), "n": len(texts), "train_seconds": round(train_seconds, 1)}
        print(f"{source} -> {target}: torch ({precision}) {scored['torch']['accuracy']:.4f}, torch (fp32) "
              f"{scored['torch-fp32']['accuracy']:.4f}, int8 {scored['onnx-int8']['accuracy']:.4f}, drop "
              f"{drop:+.2f} points ({drop_fp32:+.2f} against fp32)", flush=True)
        figures["max_drop_points"] = max(row["drop_points"] for row in figures["pairs"].values())
        figures["max_drop_points_vs_fp32"] = max(row["drop_points_vs_fp32"] for row in figures["pairs"].values())
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            temporary = out.with_suffix(".tmp")
            temporary.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
            temporary.replace(out)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not all((args.data / f"{domain}.csv").is_file() for domain in DOMAINS):
        print(f"int8 accuracy benchmark: {args.data} lacks books/electronics/kitchen.csv; pass --data or set "
              "ADAPTFLOW_DATA_DIR", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the fine-tunes' progress lines
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    int8_drops(args.data, args.work, args.seed, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
