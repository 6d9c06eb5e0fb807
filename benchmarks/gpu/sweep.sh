#!/bin/bash
# GPU sweep + speed for the accurate profile, run on a GPU machine from the repository root
# after benchmarks/gpu/prepare.sh has built .gpu_run/ (dependencies, float16 MiniLM, corpora):
#   OUT=/some/dir bash benchmarks/gpu/sweep.sh
# Phase 1 trains 12 configurations at once (each process is mostly single-threaded Python;
# the GPU is shared), phase 2 measures inference alone. Results: $OUT/results.json, logs.txt.
# The banking77 and conll2003 runs pin learn_rate_scale = 1 and n_sents = 1, the profile
# defaults when the README's GPU figures were taken. Dry run on CPU with a tiny model:
#   GPU=-1 SITE=0 PY=.venv/bin/python M=/tmp/tiny TL=240 EXTRA="--training.max_steps 4 --training.eval_frequency 2" bash benchmarks/gpu/sweep.sh
T0=$(date +%s); DEADLINE=$(( T0 + ${BUDGET:-560} ))
# Seconds allowed for the next step: at most $1, and never past the deadline (leave 15 s to collect).
tl() { local r=$(( DEADLINE - 15 - $(date +%s) )); [ $r -lt 1 ] && r=1; [ $r -lt $1 ] && echo $r || echo $1; }
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/site /tmp/data
if [ "${SITE:-1}" = 1 ] && [ ! -d /tmp/site/spacy ]; then tar -xJf .gpu_run/site.tar.xz -C /tmp/site || exit 1; fi
tar -xJf .gpu_run/data.tar.xz -C /tmp/data || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HYBRIDNLP_DATA=/tmp/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=${PY:-python3}; GPU=${GPU:-0}; M=${M:-$PWD/.gpu_run/minilm}; TL=${TL:-300}; R="$PY .gpu_run/cli.py"; O=/tmp/runs; rm -rf $O; mkdir -p $O
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c "import spacy, thinc, torch, spacy_transformers, transformers; print(spacy.__version__, thinc.__version__, torch.__version__, transformers.__version__, torch.cuda.is_available())" || exit 1
job() { local name=$1 corpus=$2 profile=$3 tl=$4; shift 4
  ( timeout $(tl $tl) $R train $profile --corpus $corpus --output $O/$name --gpu-id $GPU --paths.transformer $M "$@" $EXTRA > $O/$name.log 2>&1 &&
    timeout $(tl 90) $R evaluate $O/$name --corpus $corpus --gpu-id $GPU --output $O/$name.json >> $O/$name.log 2>&1; echo "$name rc=$? at $(( $(date +%s) - T0 ))s" ) &
}
# Phase 1: the sweep, all at once (each process is mostly single-threaded Python; the GPU is shared).
job conll_default conll2003 accurate $TL --corpora.train.n_sents 1 --corpora.dev.n_sents 1
job conll_lr2e-4 conll2003 accurate $TL --training.optimizer.learn_rate.initial_rate 0.0002 --corpora.train.n_sents 1 --corpora.dev.n_sents 1
job conll_lr1e-3 conll2003 accurate $TL --training.optimizer.learn_rate.initial_rate 0.001 --corpora.train.n_sents 1 --corpora.dev.n_sents 1
job conll_nocasing conll2003 .gpu_run/ner_nocasing.cfg $TL --corpora.train.n_sents 1 --corpora.dev.n_sents 1
job conll_casing64 conll2003 accurate $TL --components.trf_ner.model.casing.embed.width 64 --components.trf_ner.model.casing.encode.width 64 --components.trf_ner.model.casing.encode.depth 2 --corpora.train.n_sents 1 --corpora.dev.n_sents 1
job conll_2x conll2003 accurate $(( TL + 90 )) --training.max_steps 1400 --training.max_epochs 12 --training.patience 700 --corpora.train.n_sents 1 --corpora.dev.n_sents 1
job conll_words conll2003 .gpu_run/ner_words.cfg $TL --corpora.train.n_sents 1 --corpora.dev.n_sents 1
job banking_default banking77 accurate $TL --components.trf_textcat.learn_rate_scale 1
job banking_lr3e-4 banking77 accurate $TL --training.optimizer.learn_rate.initial_rate 0.0003 --components.trf_textcat.learn_rate_scale 1
job banking_lr5e-4 banking77 accurate $TL --training.optimizer.learn_rate.initial_rate 0.0005 --components.trf_textcat.learn_rate_scale 1
job banking_lr3e-4_1400 banking77 accurate $TL --training.optimizer.learn_rate.initial_rate 0.0003 --training.max_steps 1400 --training.max_epochs 10 --components.trf_textcat.learn_rate_scale 1
job wnut_default wnut17 accurate $TL --corpora.train.n_sents 1 --corpora.dev.n_sents 1
wait
echo "phase 1 done at $(( $(date +%s) - T0 ))s"
# Phase 2, alone on the GPU: training speed, inference words/s, pipeline vs bare forward, profile.
timeout $(tl 80) $R train accurate --corpus conll2003 --output $O/solo_150 --gpu-id $GPU --paths.transformer $M --training.max_steps 150 --training.eval_frequency 150 --corpora.train.n_sents 1 --corpora.dev.n_sents 1 $EXTRA > $O/solo_150.log 2>&1; echo "solo rc=$?"
for name in conll_default banking_default; do
  [ -d $O/$name ] && corpus=$([ $name = conll_default ] && echo conll2003 || echo banking77) && timeout $(tl 45) $R evaluate $O/$name --corpus $corpus --gpu-id $GPU --output $O/$name.solo.json > /dev/null 2>&1; echo "$name solo eval rc=$?"
done
for bs in 32 128; do
  timeout $(tl 50) $PY benchmarks/transformer_speed.py --gpu-id $GPU --model $M --texts /tmp/data/sst2/test.jsonl --train /tmp/data/banking77/train.jsonl --n 1821 --batch-size $bs --threads 4 --repeats 3 2>&1 | tail -3
done
[ -d $O/banking_default ] && timeout $(tl 45) $PY benchmarks/gpu/pipe_profile.py $M /tmp/data/banking77/train.jsonl /tmp/data/sst2/test.jsonl $GPU textcat 2>&1 | head -45
# Collect.
$PY - <<'PY' > $OUT/results.json
import json, glob, os
res = {}
for d in sorted(glob.glob("/tmp/runs/*/meta.json")):
    name = d.split("/")[-2]; meta = json.load(open(d))
    res[name] = {"train_seconds": meta.get("hybridnlp", {}).get("train_seconds")}
    for suffix in ("json", "solo.json"):
        p = f"/tmp/runs/{name}.{suffix}"
        if os.path.exists(p):
            s = json.load(open(p))["scores"]
            res[name][suffix] = {k: v for k, v in s.items() if not isinstance(v, dict)}
print(json.dumps(res, indent=1))
PY
for f in $O/*.log; do echo "=== $f"; tr '\r' '\n' < $f | grep -v -E '^\s*$|it/s\]$|s/it\]$|pipe/s|s/pipe' | tail -25; done > $OUT/logs.txt
$PY -c "import json; [print(k, v.get('train_seconds'), {kk: round(vv, 4) for kk, vv in v.get('json', {}).items() if kk in ('ents_f', 'cats_micro_f', 'cats_score', 'words_per_second', 'docs_per_second', 'accuracy')}) for k, v in json.load(open('$OUT/results.json')).items()]"
echo "total $(( $(date +%s) - T0 ))s"
