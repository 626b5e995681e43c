#!/bin/bash
# On a lent GPU machine, in one device call (after pack.sh here; carry [".dev"]): the wheels, model and data
# unpacked; throughput.py on the GPU (SKIP_TP=1 skips it); then the adaptation table, one process per (pair, seed),
# stopped at DEADLINE seconds whatever is left, the rows so far merged into $OUT/adaptation-h200.json. METHODS,
# PAIRS, SEEDS, EXTRA (--set ...) and SKIP_LPFT choose the rows. DRY=1 PY=.venv/bin/python DEV=cpu runs it here.
set -u
T0=$(date +%s)
DEADLINE=${DEADLINE:-560}
DEV=${DEV:-cuda}
PY=${PY:-python3}
PAIRS=${PAIRS:-books:kitchen kitchen:books books:electronics electronics:books electronics:kitchen kitchen:electronics}
SEEDS=${SEEDS:-0 1 2}
EXTRA=${EXTRA:-}
STEPS=${STEPS:-100}
mkdir -p "$OUT"
LOG=/tmp/devlogs; ROWS=/tmp/rows; rm -rf $LOG $ROWS /tmp/work; mkdir -p $LOG $ROWS
el() { echo $(( $(date +%s) - T0 )); }
if [ -z "${DRY:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .dev/wheels/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site
  cp benchmarks/lent_gpu/device_sitecustomize.py /tmp/site/sitecustomize.py
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
$PY benchmarks/lent_gpu/prepare.py unpack .dev /tmp/model /tmp/data || exit 1
{ echo -n "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo no GPU), "
  echo -n "$(nproc --all) CPU cores, $(lscpu | sed -n 's/^Model name: *//p'); "
  $PY -c "
import importlib.metadata as m, platform
names = ['torch','transformers','tokenizers','sentence-transformers','setfit','datasets','pyarrow','huggingface-hub',
         'pandas','scikit-learn','great-expectations','pydantic','numpy']
print('python', platform.python_version() + ', ' + ', '.join(f'{n} {m.version(n)}' for n in names))"; } > $OUT/env.txt 2>&1
cat $OUT/env.txt
$PY -c "import setfit, great_expectations, pydantic, datasets" || echo "IMPORT CHECK FAILED"
echo "[$(el) s] set-up done"
if [ -z "${SKIP_TP:-}" ]; then
  timeout ${TP_LIMIT:-170} $PY benchmarks/throughput.py --data /tmp/data --model /tmp/model --device $DEV \
    --steps $STEPS --repeats ${REPEATS:-1} --variants naive,engine,engine-cudnn-attention --json $OUT/throughput-h200.json \
    > $LOG/throughput.log 2>&1
  rc=$?; echo "[$(el) s] throughput rc $rc"; grep -E "^round|^\||ratio|torch" $LOG/throughput.log
fi
for pair in $PAIRS; do for seed in $SEEDS; do
  name=${pair/:/-}-$seed
  left=$(( DEADLINE - $(el) - 20 ))
  ( timeout $left $PY benchmarks/adaptation.py --data /tmp/data --pairs $pair --seeds $seed \
      --methods ${METHODS:-source_only,target_only,auto} --set model.name_or_path=/tmp/model --set train.device=$DEV $EXTRA \
      --workdir /tmp/work/$name --json $ROWS/$name.json > $LOG/$name.log 2>&1
    left=$(( DEADLINE - $(el) - 20 ))
    [ -z "${SKIP_LPFT:-}" ] && timeout $left $PY benchmarks/adaptation.py --data /tmp/data --pairs $pair --seeds $seed --methods source_only \
      --set train.head_init=probe --label=-lpft --set model.name_or_path=/tmp/model --set train.device=$DEV $EXTRA \
      --workdir /tmp/work/$name-lpft --json $ROWS/$name-lpft.json >> $LOG/$name.log 2>&1 ) &
done; done
while [ -n "$(jobs -r)" ] && [ $(el) -lt $DEADLINE ]; do
  sleep 20
  echo "[$(el) s] rows: $(cat $ROWS/*.json 2>/dev/null | grep -c '"method"') running: $(jobs -r | wc -l) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"
done
pkill -f benchmarks/adaptation.py; sleep 1
$PY benchmarks/lent_gpu/merge.py $ROWS $OUT/adaptation-h200.json $OUT/env.txt
grep -h -E "accuracy [0-9.]+ macro" $LOG/*.log | sort
grep -h -B2 -A8 "Traceback" $LOG/*.log | head -60
tar czf $OUT/logs.tar.gz -C /tmp devlogs
echo "[$(el) s] done"
