"""Whether int8 ONNX pays for the similarity check's embeddings: the seconds to embed the check's texts in torch
(bf16 where the CPU computes it natively, and fp32) and in ONNX Runtime (the export `inference.backend` uses, fp32
and int8), and what the export and the quantisation cost once per foundation model.

    .venv/bin/python benchmarks/embedding_backends.py [--params params.yaml] [--repeats 3] [--json PATH]

The texts are the similarity check's two samples of the embedded default (`params.yaml`: up to `sample_size` each
of the source and of the target pool, as `flows.layout.target_pool` gathers it), at `similarity.max_length`, batches of 64. Torch runs `embed_texts` as the
check does (the model load included, no cache). ONNX runs the foundation model exported with a new head
(`tasks.onnx_inference.exported`, the graph the evaluation's `onnx` / `onnx-int8` backends run), labelling the same
texts in the same length-sorted batches: the head's cost is a 384 x 2 product, so the time is the encoder's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds after a warm one (default 3)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: needs at least 1 round")

    import pandas as pd
    import torch
    from sweep import machine
    from transformers import AutoConfig

    from flows.domain_shift import sample_texts
    from tasks.config import load_config
    from tasks.devices import resolve_precision
    from tasks.embeddings import embed_texts
    from tasks.inference import predict_probabilities
    from tasks.loading import load_roles
    from tasks.models import load_classifier, load_tokenizer
    from tasks.onnx_inference import OnnxClassifier, exported

    config = load_config(args.params)
    roles = load_roles(config.data, config.split)
    sim = config.similarity
    pool = [frame for frame in (roles.target_labeled, roles.target_validation, roles.target_unlabeled)
            if not frame.empty]  # flows.layout.target_pool: the target texts the check samples
    texts = sample_texts(roles.source_train, sim.sample_size, sim.seed)["text"].tolist() + sample_texts(
        pd.concat(pool, ignore_index=True), sim.sample_size, sim.seed)["text"].tolist()
    name = config.model.name_or_path
    native = resolve_precision("auto")
    print(f"{machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads; CPU bf16 native: "
          f"{native == 'bf16'}; {len(texts)} texts at max_length {sim.max_length}", flush=True)

    with tempfile.TemporaryDirectory(prefix="adaptflow-embed-") as scratch:
        work = Path(scratch)
        load_classifier(name, ("negative", "positive")).save_pretrained(work / "encoder")
        load_tokenizer(name).save_pretrained(work / "encoder")
        started = time.perf_counter()
        fp32_graph = exported(work / "encoder", work / "onnx", int8=False)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        int8_graph = exported(work / "encoder", work / "onnx", int8=True)
        quantise_s = time.perf_counter() - started
        encoder_config = AutoConfig.from_pretrained(work / "encoder")
        tokenizer = load_tokenizer(str(work / "encoder"))
        sessions = {"onnx": OnnxClassifier(fp32_graph, encoder_config),
                    "onnx-int8": OnnxClassifier(int8_graph, encoder_config)}

        def torch_run(precision: str) -> None:
            embed_texts(texts, name, sim.max_length, None, precision=precision)

        runs = {"torch-bf16": lambda: torch_run("bf16"), "torch-fp32": lambda: torch_run("fp32")}
        runs.update({key: (lambda session=session: predict_probabilities(session, tokenizer, texts, sim.max_length,
                                                                           64)) for key, session in sessions.items()})
        seconds: dict[str, list[float]] = {key: [] for key in runs}
        for key, action in runs.items():  # warm: first imports, first kernels of each shape
            action()
        for _ in range(args.repeats):  # interleaved: a slow spell of the host hits every backend
            for key, action in runs.items():
                started = time.perf_counter()
                action()
                seconds[key].append(round(time.perf_counter() - started, 3))
    medians = {key: statistics.median(values) for key, values in seconds.items()}
    print(f"\nonce per foundation model: export {export_s:.2f} s, int8 quantisation {quantise_s:.2f} s")
    print("| backend | seconds (median) | rounds |\n|---|---|---|")
    for key, values in seconds.items():
        print(f"| {key} | {medians[key]:.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "cpu_bf16_native": native == "bf16",
                                         "texts": len(texts), "max_length": sim.max_length,
                                         "export_s": round(export_s, 3), "quantise_s": round(quantise_s, 3),
                                         "seconds": seconds, "median_s": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
