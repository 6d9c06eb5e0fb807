#!/usr/bin/env bash
# The zeroshot profile on the public corpora: label names, label descriptions (the JSON files
# beside this script), and descriptions plus the first 8 training texts of each label.
# Usage: bash benchmarks/zeroshot/run.sh [OUT_DIR]   (default bench-out/zeroshot; ~10 min on 2 cores)
# Prints a Markdown table of dev and test accuracy / macro-F1 and words/s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-bench-out/zeroshot}
BIN=${BIN:-.venv/bin}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
run() {  # run NAME CORPUS [overrides...]
  local name=$1 corpus=$2; shift 2
  "$BIN/hybridnlp" train zeroshot --corpus "$corpus" --output "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  for split in dev test; do
    "$BIN/hybridnlp" evaluate "$OUT/$name" --corpus "$corpus" --split "$split" \
      --output "$OUT/$name.$split.json" >> "$OUT/$name.log" 2>&1
  done
  echo "done $name" >&2
}
for corpus in banking77 trec6 sst2; do
  run "$corpus-names" "$corpus"
  run "$corpus-names-8shot" "$corpus" --components.zeroshot_textcat.examples_per_label 8
  if [ -f "$HERE/$corpus.json" ]; then
    run "$corpus-descriptions" "$corpus" --paths.label_texts "$HERE/$corpus.json"
    run "$corpus-descriptions-8shot" "$corpus" --paths.label_texts "$HERE/$corpus.json" \
      --components.zeroshot_textcat.examples_per_label 8
  fi
done
"$BIN/python" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| corpus | labels from | dev acc | test acc | test macro-F1 | words/s (test) |")
print("|---|---|---:|---:|---:|---:|")
for corpus in ("banking77", "trec6", "sst2"):
    for variant in ("names", "names-8shot", "descriptions", "descriptions-8shot"):
        name = f"{corpus}-{variant}"
        if not (out / f"{name}.test.json").is_file():
            continue
        dev = json.loads((out / f"{name}.dev.json").read_text())["scores"]
        s = json.loads((out / f"{name}.test.json").read_text())["scores"]
        print(f"| {corpus} | {variant.replace('-8shot', ' + 8 examples each')} | {dev['accuracy']:.3f} "
              f"| {s['accuracy']:.3f} | {s['cats_macro_f']:.3f} | {s['words_per_second']:,.0f} |")
PY
