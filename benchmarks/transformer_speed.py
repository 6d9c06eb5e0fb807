"""Throughput of the accurate text-classification pipeline against a bare transformers forward.

Both sides get the same texts (the first N sentences of SST-2's test split), the same batch
size, the same model (all-MiniLM-L6-v2 from the installed package) and the same number of
threads. The bare side is tokenizer + ``AutoModel`` forward under ``torch.inference_mode``,
texts in file order; the pipeline side is ``nlp.pipe`` over the ``accurate`` profile
(spaCy tokenizer, spacy-transformers encoder, mean-pooled softmax head, output writing),
with its head initialized but untrained (training does not change the cost). Each side is
warmed up on one batch, then timed ``--repeats`` times in alternation; the best run of each
is kept (the least disturbed by other processes).

    OMP_NUM_THREADS=1 python benchmarks/transformer_speed.py --n 500 --batch-size 32 --threads 1

Prints docs/s for both and the ratio pipeline / bare (target >= 0.85). With
``--compare-upstream`` it also times the same pipeline built with spacy-transformers' own
forward pass and wordpiece pooling (what hybridnlp's vectorized versions replace).
"""

import argparse
import contextlib
import json
import os
import time
from pathlib import Path


def read_texts(path: Path, n: int):
    """The first ``n`` texts of a corpus file (JSONL ``text`` fields, or CoNLL sentences)."""
    if path.suffix != ".jsonl":
        import spacy

        from hybridnlp.corpora import iter_examples

        texts = []
        for example in iter_examples(path, spacy.blank("en")):
            texts.append(example.reference.text)
            if len(texts) >= n:
                break
        return texts
    texts = []
    with path.open(encoding="utf8") as file_:
        for line in file_:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if len(texts) >= n:
                break
    return texts


def build_bare(model_dir: Path):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, use_fast=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    return tokenizer, model


def run_bare(tokenizer, model, texts, batch_size: int, mixed_precision: bool = False) -> float:
    import torch

    start = time.perf_counter()
    # On a GPU the pipeline's encoder runs under autocast (mixed_precision = true in the
    # profile); the bare side gets the same, so the ratio compares like with like.
    with torch.inference_mode(), torch.autocast("cuda", enabled=mixed_precision):
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[i : i + batch_size], padding=True, truncation=True, max_length=512, return_tensors="pt"
            )
            model(**batch).last_hidden_state.cpu()
    return time.perf_counter() - start


def build_pipeline(train_path: Path, model_name: str, task: str = "textcat"):
    import spacy
    from spacy import util

    import hybridnlp.components.transformer.architectures  # noqa: F401  (until entry points)
    import hybridnlp.components.transformer.ner  # noqa: F401
    import hybridnlp.components.transformer.textcat  # noqa: F401
    from hybridnlp.corpora import read_examples

    config_path = Path(__file__).resolve().parents[1] / "hybridnlp" / "configs" / f"accurate_{task}.cfg"
    config = util.load_config(
        config_path,
        overrides={"paths.train": str(train_path), "paths.dev": str(train_path), "paths.transformer": model_name},
        interpolate=True,
    )
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = read_examples(train_path, nlp)
    nlp.initialize(lambda: examples)
    return nlp


@contextlib.contextmanager
def upstream_code():
    """Inside: pipelines are built, and run, with spacy-transformers' own forward pass,
    per-doc wordpiece pooling and thinc's predict (instead of hybridnlp's versions)."""
    from spacy_transformers.layers.trfs2arrays import trfs2arrays
    from spacy_transformers.layers.transformer_model import forward as upstream_forward

    from spacy_transformers.layers.hf_shim import HFShim

    from hybridnlp.components.transformer import _pooling, encoder

    saved = encoder.fast_forward, _pooling.batch_trfs2arrays, encoder.SafeHFShim.predict
    encoder.fast_forward, _pooling.batch_trfs2arrays = upstream_forward, trfs2arrays
    encoder.SafeHFShim.predict = HFShim.predict  # thinc's: eval() and train() around each call
    try:
        yield
    finally:
        encoder.fast_forward, _pooling.batch_trfs2arrays, encoder.SafeHFShim.predict = saved


def run_pipeline(nlp, texts, batch_size: int) -> float:
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_dir = Path(os.environ.get("HYBRIDNLP_DATA", "/work/shared/corpora"))
    parser.add_argument("--texts", type=Path, default=data_dir / "sst2" / "test.jsonl")
    parser.add_argument("--train", type=Path, default=data_dir / "sst2" / "train.jsonl",
                        help="a few examples from here give the head its labels")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--task", choices=("textcat", "ner"), default="textcat",
                        help="which accurate pipeline: text classification or entity recognition")
    parser.add_argument("--compare-upstream", action="store_true",
                        help="also time the pipeline with spacy-transformers' own forward and pooling")
    parser.add_argument("--model", default="all-MiniLM-L6-v2",
                        help="known model name or local Hugging Face model directory")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.gpu_id >= 0:
        import spacy

        spacy.require_gpu(args.gpu_id)
    from hybridnlp.components.transformer.encoder import resolve_model_dir

    texts = read_texts(args.texts, args.n)
    tokenizer, model = build_bare(resolve_model_dir(args.model))
    if args.gpu_id >= 0:
        model = model.to(f"cuda:{args.gpu_id}")
        device = model.device
        _tok = tokenizer

        def tokenizer(batch, **kwargs):  # noqa: F811  (move the inputs to the model's device)
            return _tok(batch, **kwargs).to(device)

    nlp = build_pipeline(args.train, args.model, args.task)
    mixed = bool(getattr(nlp.get_pipe("transformer").model, "mixed_precision", False))
    run_bare(tokenizer, model, texts[: args.batch_size], args.batch_size, mixed)
    run_pipeline(nlp, texts[: args.batch_size], args.batch_size)
    nlp_upstream = None
    if args.compare_upstream:
        with upstream_code():
            nlp_upstream = build_pipeline(args.train, args.model, args.task)
            run_pipeline(nlp_upstream, texts[: args.batch_size], args.batch_size)
    bare_times, pipe_times, upstream_times = [], [], []
    for _ in range(args.repeats):
        bare_times.append(run_bare(tokenizer, model, texts, args.batch_size, mixed))
        pipe_times.append(run_pipeline(nlp, texts, args.batch_size))
        if nlp_upstream is not None:
            with upstream_code():
                upstream_times.append(run_pipeline(nlp_upstream, texts, args.batch_size))
    bare, pipe = min(bare_times), min(pipe_times)
    n_words = sum(len(t.split()) for t in texts)
    print(f"texts: {len(texts)} from {args.texts} ({n_words} words), batch size {args.batch_size}, "
          f"threads {args.threads}, device {'gpu' if args.gpu_id >= 0 else 'cpu'}, "
          f"mixed precision {mixed}, model {args.model}")
    print(f"bare transformers forward: {len(texts) / bare:8.1f} docs/s  (runs: {', '.join(f'{t:.2f}s' for t in bare_times)})")
    print(f"accurate {args.task} pipeline (nlp.pipe): {len(texts) / pipe:8.1f} docs/s, "
          f"{n_words / pipe:.0f} words/s  (runs: {', '.join(f'{t:.2f}s' for t in pipe_times)})")
    print(f"ratio pipeline / bare: {bare / pipe:.3f}")
    if upstream_times:
        upstream = min(upstream_times)
        print(f"with spacy-transformers' forward and pooling: {len(texts) / upstream:8.1f} docs/s  "
              f"(runs: {', '.join(f'{t:.2f}s' for t in upstream_times)}); ratio to bare {bare / upstream:.3f}")


if __name__ == "__main__":
    main()
