#!/bin/bash
# Speed of the accurate profile on a GPU, each measurement alone on the card, run from the
# repository root after benchmarks/gpu/prepare.sh has built .gpu_run/ (dependencies,
# float16 MiniLM, corpora):   OUT=/some/dir bash benchmarks/gpu/speed.sh
# 1. inference: pipeline vs bare transformers forward (transformer_speed.py), text
#    classification (SST-2 test) and entity recognition (CoNLL-2003 test), each also with
#    spacy-transformers' own forward and pooling; 2. training steps/s (train_speed.py);
# 3. the transformer tests on the GPU; 4. a profile of nlp.pipe. Dry run on CPU:
#   GPU=-1 SITE=0 PY=.venv/bin/python M=/tmp/tiny N=200 STEPS=3 bash benchmarks/gpu/speed.sh
T0=$(date +%s); DEADLINE=$(( T0 + ${BUDGET:-540} ))
tl() { local r=$(( DEADLINE - 10 - $(date +%s) )); [ $r -lt 1 ] && r=1; [ $r -lt $1 ] && echo $r || echo $1; }
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/site /tmp/data
if [ "${SITE:-1}" = 1 ] && [ ! -d /tmp/site/spacy ]; then tar -xJf .gpu_run/site.tar.xz -C /tmp/site || exit 1; fi
tar -xJf .gpu_run/data.tar.xz -C /tmp/data || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HYBRIDNLP_DATA=/tmp/data
PY=${PY:-python3}; GPU=${GPU:-0}; M=${M:-$PWD/.gpu_run/minilm}; N=${N:-4000}; STEPS=${STEPS:-150}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c "import spacy, thinc, torch, spacy_transformers, transformers; print(spacy.__version__, thinc.__version__, torch.__version__, transformers.__version__, torch.cuda.is_available())" || exit 1
echo "unpacked at $(( $(date +%s) - T0 ))s"
S="$PY benchmarks/transformer_speed.py --gpu-id $GPU --model $M --threads 4 --repeats 3 --compare-upstream"
timeout $(tl 100) $S --texts /tmp/data/sst2/test.jsonl --train /tmp/data/banking77/train.jsonl --n $N --batch-size 32 2>&1 | tail -4 | tee $OUT/speed_textcat.txt
timeout $(tl 100) $S --task ner --texts /tmp/data/conll2003/test.conll --train /tmp/data/conll2003/dev.conll --n $N --batch-size 32 2>&1 | tail -4 | tee $OUT/speed_ner.txt
echo "inference done at $(( $(date +%s) - T0 ))s"
for corpus in banking77 conll2003; do
  timeout $(tl 110) $PY benchmarks/train_speed.py --corpus $corpus --gpu-id $GPU --model $M --threads 4 --steps $STEPS --warmup 10 2>&1 | tail -2 | tee -a $OUT/train_speed.txt
done
echo "training speed done at $(( $(date +%s) - T0 ))s"
timeout $(tl 80) $S --texts /tmp/data/sst2/test.jsonl --train /tmp/data/banking77/train.jsonl --n $N --batch-size 128 2>&1 | tail -4 | tee $OUT/speed_textcat_128.txt
if $PY -c "import pytest" 2>/dev/null; then
  HYBRIDNLP_TEST_GPU=$([ $GPU -ge 0 ] && echo 1 || echo 0) timeout $(tl 120) $PY -m pytest -q -x -p no:cacheprovider \
    tests/test_transformer_forward.py tests/test_transformer_ner.py tests/test_transformer_textcat.py 2>&1 | tail -8 | tee $OUT/gpu_tests.txt
else echo "no pytest on this machine"; fi
timeout $(tl 60) $PY benchmarks/gpu/pipe_profile.py $M /tmp/data/banking77/train.jsonl /tmp/data/sst2/test.jsonl $GPU textcat 2>&1 | head -40 > $OUT/profile_textcat.txt
head -3 $OUT/profile_textcat.txt
echo "total $(( $(date +%s) - T0 ))s"
