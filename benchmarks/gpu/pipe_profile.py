"""Where nlp.pipe spends its time: per component, then cProfile's top functions.

    python benchmarks/gpu/pipe_profile.py MODEL_DIR TRAIN_FILE TEXTS_FILE GPU_ID [textcat|ner]

The accurate pipeline is built from the profile's config (head initialized, untrained) as in
benchmarks/transformer_speed.py; GPU_ID -1 runs on the CPU.
"""
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from transformer_speed import build_pipeline, read_texts  # noqa: E402

model, train, texts_path, gpu = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
task = sys.argv[5] if len(sys.argv) > 5 else "textcat"
if gpu >= 0:
    import spacy

    spacy.require_gpu(gpu)
nlp = build_pipeline(train, model, task)
texts = read_texts(texts_path, 2000)
list(nlp.pipe(texts[:256], batch_size=32))  # warm-up
for bs in (32, 256):
    start = time.perf_counter()
    docs = list(nlp.tokenizer.pipe(texts, batch_size=bs))
    line = [f"{task} batch {bs}: tokenizer {len(texts) / (time.perf_counter() - start):.0f} docs/s"]
    for name, proc in nlp.pipeline:
        start = time.perf_counter()
        docs = list(proc.pipe(docs, batch_size=bs))
        line.append(f"{name} {len(texts) / (time.perf_counter() - start):.0f} docs/s")
    start = time.perf_counter()
    list(nlp.pipe(texts, batch_size=bs))
    line.append(f"whole nlp.pipe {len(texts) / (time.perf_counter() - start):.0f} docs/s")
    print("; ".join(line))
profiler = cProfile.Profile()
profiler.enable()
list(nlp.pipe(texts, batch_size=32))
profiler.disable()
pstats.Stats(profiler).sort_stats("tottime").print_stats(22)
