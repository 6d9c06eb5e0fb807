#!/bin/bash
# Short GPU sweep: banking77 textcat, head learning-rate scale (after benchmarks/gpu/prepare.sh).
# Dev-score tables go straight to $OUT every 20 s:  OUT=/some/dir bash benchmarks/gpu/banking_head_lr.sh
T0=$(date +%s)
mkdir -p /tmp/site /tmp/data
tar -xJf .gpu_run/site.tar.xz -C /tmp/site && tar -xJf .gpu_run/data.tar.xz -C /tmp/data || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HYBRIDNLP_DATA=/tmp/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
M=$PWD/.gpu_run/minilm; R="python3 .gpu_run/cli.py"
echo "unpacked at $(( $(date +%s) - T0 ))s"
job() { local name=$1; shift
  $R train accurate --corpus banking77 --output /tmp/$name --gpu-id 0 --paths.transformer $M --training.eval_frequency 50 "$@" > /tmp/$name.log 2>&1 &
}
job lr1e-4_x10 --components.trf_textcat.learn_rate_scale 10
job lr3e-4_x10 --components.trf_textcat.learn_rate_scale 10 --training.optimizer.learn_rate.initial_rate 0.0003
job lr2e-4_x5 --components.trf_textcat.learn_rate_scale 5 --training.optimizer.learn_rate.initial_rate 0.0002
# Copy the dev-score tables to $OUT every 20 s, so a run cut off at the time limit still reports.
for i in $(seq ${ROUNDS:-9}); do
  sleep 20
  for name in lr1e-4_x10 lr3e-4_x10 lr2e-4_x5; do tr '\r' '\n' < /tmp/$name.log | grep -E '^\s+[0-9]+\s+[0-9]+' > $OUT/$name.txt; done
  echo "round $i at $(( $(date +%s) - T0 ))s"
done
for f in $OUT/*.txt; do echo "== $f"; cat $f; done
