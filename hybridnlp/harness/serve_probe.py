"""Measure what serving a pipeline costs in memory, in a process of its own.

Run as ``python -m hybridnlp.harness.serve_probe MODEL INPUTS.json --batch-size N`` by
:func:`hybridnlp.harness.cost.serving_memory` in a fresh process, so the numbers hold
only this pipeline and spaCy, not the harness or the other systems it has loaded. Prints
one JSON object: resident-set-size peaks after importing spaCy, after loading and after
running the pipeline, and, when a GPU is used, the GPU memory torch (peak) and cupy (pool)
allocated.

The peak is the process's own high-water mark, ``VmHWM`` in /proc/self/status. On Linux
``getrusage(RUSAGE_SELF).ru_maxrss`` of a process started by fork/vfork + exec begins at
its parent's peak (the kernel carries it across exec), so in a child of the harness it
would report the harness's memory; ``ru_maxrss`` is used only where /proc is missing.
"""

import argparse
import json
import resource
import sys


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as file_:
            for line in file_:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # reported in kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, Linux KiB.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def gpu_memory_mb() -> dict:
    """GPU memory the pipeline took, in MiB: torch's peak allocation (transformer parts) plus
    what cupy's memory pool holds (thinc layers on GPU), which keeps freed blocks, so it
    is close to cupy's peak. Each allocator is read only if the pipeline loaded it."""
    torch = sys.modules.get("torch")
    cupy = sys.modules.get("cupy")
    torch_mb = torch.cuda.max_memory_allocated() / 2**20 if torch is not None and torch.cuda.is_available() else None
    cupy_mb = cupy.get_default_memory_pool().total_bytes() / 2**20 if cupy is not None else None
    known = [mb for mb in (torch_mb, cupy_mb) if mb is not None]
    return {"gpu_peak_mb": sum(known) if known else None, "gpu_torch_peak_mb": torch_mb, "gpu_cupy_pool_mb": cupy_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("inputs", help="JSON: {'texts': [...]} or {'words': [[...]], 'spaces': [[...]]}")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args()

    import spacy
    from spacy.tokens import Doc

    result = {"import_rss_mb": max_rss_mb()}
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    nlp = spacy.load(args.model)
    result["load_rss_mb"] = max_rss_mb()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(args.threads)
        if args.gpu_id >= 0 and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    with open(args.inputs, encoding="utf8") as file_:
        payload = json.load(file_)
    if "texts" in payload:
        inputs = payload["texts"]
    else:
        inputs = [Doc(nlp.vocab, words=w, spaces=s) for w, s in zip(payload["words"], payload["spaces"])]
    n_words = sum(len(doc) for doc in nlp.pipe(inputs, batch_size=args.batch_size))
    result["peak_rss_mb"] = max_rss_mb()
    result["n_docs"] = len(inputs)
    result["n_words"] = n_words
    result.update(gpu_memory_mb() if args.gpu_id >= 0 else {"gpu_peak_mb": None})
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
