#!/bin/bash
# Here, before the device call: what the lent GPU machine lacks, into .dev/ (git-ignored; name it in the call's
# carry): the wheels of wheels.txt for its Python 3.12, MiniLM in fp16 and the data gzipped (about 59 MiB of the
# 64 MiB a call may carry). Then: the device tool's run, carry [".dev"], command `bash benchmarks/lent_gpu/run.sh`.
set -eu
DATA=${1:-${ADAPTFLOW_DATA_DIR:-../shared/data/amazon-msd}}
grep -qx "/.dev/" .git/info/exclude 2>/dev/null || echo "/.dev/" >> .git/info/exclude
rm -rf .dev && mkdir -p .dev/wheels
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .dev/wheels -r benchmarks/lent_gpu/wheels.txt
.venv/bin/python benchmarks/lent_gpu/prepare.py pack .dev "$DATA"
du -sh .dev
