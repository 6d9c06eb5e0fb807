"""Where nlp.pipe spends its time on the GPU: per component, then cProfile's top functions."""
import cProfile, json, pstats, sys, time

import hybridnlp.components.transformer.architectures  # noqa: F401
import hybridnlp.components.transformer.textcat  # noqa: F401
import spacy

model, texts_path, gpu = sys.argv[1], sys.argv[2], int(sys.argv[3])
if gpu >= 0:
    spacy.require_gpu(gpu)
nlp = spacy.load(model)
texts = [json.loads(l)["text"] for l in open(texts_path) if l.strip()]
list(nlp.pipe(texts[:256], batch_size=32))  # warm-up
for bs in (32, 256):
    start = time.perf_counter(); docs = list(nlp.tokenizer.pipe(texts, batch_size=bs)); tok = time.perf_counter() - start
    line = [f"batch {bs}: tokenizer {len(texts) / tok:.0f} docs/s"]
    for name, proc in nlp.pipeline:
        start = time.perf_counter(); docs = list(proc.pipe(docs, batch_size=bs)); sec = time.perf_counter() - start
        line.append(f"{name} {len(texts) / sec:.0f} docs/s")
    start = time.perf_counter(); list(nlp.pipe(texts, batch_size=bs)); sec = time.perf_counter() - start
    line.append(f"whole nlp.pipe {len(texts) / sec:.0f} docs/s")
    print("; ".join(line))
profiler = cProfile.Profile()
profiler.enable(); list(nlp.pipe(texts, batch_size=32)); profiler.disable()
pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
