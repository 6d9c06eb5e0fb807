"""What a pipeline costs to serve: throughput, latency, memory and size on disk.

Timings run ``nlp.pipe`` / ``nlp(...)`` on the inputs a user would pass (raw text for text
classification, the corpus's tokens for pre-tokenized NER), with thread counts fixed by
:func:`fix_threads`, after a warm-up, and report the median of several rounds. Memory is
measured in a fresh process (``serve_probe``) so each number holds one pipeline only.
"""

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")
PipelineInput = Union[str, Doc]


@contextmanager
def fix_threads(threads: int) -> Iterator[None]:
    """Pin numeric libraries to ``threads`` threads while the block runs.

    Environment variables cover libraries loaded later and child processes;
    threadpoolctl covers the BLAS/OpenMP pools already loaded; torch is set when loaded
    (see :func:`pin_torch_threads`).
    """
    saved = {name: os.environ.get(name) for name in THREAD_ENV + ("TOKENIZERS_PARALLELISM",)}
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    # The Hugging Face tokenizers pool would otherwise add threads of its own.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=threads):
            pin_torch_threads(threads)
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pin_torch_threads(threads: int) -> None:
    """Set torch's intra-op thread count if a pipeline has loaded torch (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def sample_evenly(items: Sequence, n: int) -> List:
    """Up to ``n`` items spread evenly over the sequence (all of them if it is shorter), so a
    sample is not biased towards the start of a sorted file."""
    if n <= 0 or n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def fresh(inputs: Sequence[PipelineInput]) -> List[PipelineInput]:
    """Unannotated copies of pre-tokenized docs (texts stay texts), so every round starts
    from the same input and no component sees the previous round's output."""
    return [Doc(x.vocab, words=[t.text for t in x], spaces=[bool(t.whitespace_) for t in x])
            if isinstance(x, Doc) else x for x in inputs]


def measure_throughput(
    nlp: Language, inputs: Sequence[PipelineInput], *, batch_size: int, rounds: int = 3, threads: int = 1
) -> Dict[str, float]:
    """Words and docs per second of ``nlp.pipe`` at ``batch_size``: one warm-up batch, then
    the median of ``rounds`` timed passes over ``inputs``. Words are the output's tokens."""
    pin_torch_threads(threads)
    list(nlp.pipe(fresh(inputs[:batch_size]), batch_size=batch_size))
    seconds = []
    n_words = 0
    for _ in range(max(1, rounds)):
        batch = fresh(inputs)
        gc.collect()
        start = time.perf_counter()
        docs = list(nlp.pipe(batch, batch_size=batch_size))
        seconds.append(time.perf_counter() - start)
        n_words = sum(len(doc) for doc in docs)
    median = max(statistics.median(seconds), 1e-9)
    return {
        "words_per_second": n_words / median,
        "docs_per_second": len(inputs) / median,
        "throughput_seconds": seconds,
        "throughput_docs": len(inputs),
        "throughput_words": n_words,
    }


def measure_latency(
    nlp: Language, inputs: Sequence[PipelineInput], *, warmup: int = 5, threads: int = 1
) -> Dict[str, float]:
    """Milliseconds per single document (``nlp(x)``, batch size 1): p50 and p95 over
    ``inputs`` after ``warmup`` untimed calls."""
    import numpy as np

    pin_torch_threads(threads)
    for x in fresh(inputs[:warmup]):
        nlp(x)
    times = []
    for x in fresh(inputs):
        start = time.perf_counter()
        nlp(x)
        times.append((time.perf_counter() - start) * 1000.0)
    if not times:
        return {"latency_ms_p50": None, "latency_ms_p95": None, "latency_docs": 0}
    p50, p95 = np.percentile(times, [50, 95])
    return {"latency_ms_p50": float(p50), "latency_ms_p95": float(p95), "latency_docs": len(times)}


def size_on_disk_mb(path: Union[str, Path]) -> float:
    """Total size of the files under a pipeline directory, in MiB."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def serving_memory(
    model_path: Union[str, Path],
    inputs: Sequence[PipelineInput],
    *,
    batch_size: int,
    threads: int = 1,
    gpu_id: int = -1,
    timeout: float = 1800,
) -> Dict[str, Optional[float]]:
    """Peak memory of a fresh process that loads the pipeline and runs it over ``inputs``.

    Returns ``peak_rss_mb`` (``ru_maxrss`` after the run), ``load_rss_mb`` (after loading),
    ``import_rss_mb`` (after importing spaCy: the floor every pipeline pays) and
    ``gpu_peak_mb`` (``torch.cuda.max_memory_allocated`` plus cupy's pool, also apart as
    ``gpu_torch_peak_mb`` and ``gpu_cupy_pool_mb``; None on CPU). Raises RuntimeError
    (E610) if the process fails.
    """
    if inputs and isinstance(inputs[0], Doc):
        payload = {"words": [[t.text for t in d] for d in inputs],
                   "spaces": [[bool(t.whitespace_) for t in d] for d in inputs]}
    else:
        payload = {"texts": list(inputs)}
    env = dict(os.environ)
    for name in THREAD_ENV:
        env[name] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    with tempfile.TemporaryDirectory(prefix="hybridnlp-probe-") as tmp:
        inputs_path = Path(tmp) / "inputs.json"
        inputs_path.write_text(json.dumps(payload), encoding="utf8")
        command = [sys.executable, "-m", "hybridnlp.harness.serve_probe", str(model_path), str(inputs_path),
                   "--batch-size", str(batch_size), "--threads", str(threads), "--gpu-id", str(gpu_id)]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(Errors.E610.format(path=model_path, problem=" | ".join(tail)))
    return json.loads(proc.stdout.strip().splitlines()[-1])
