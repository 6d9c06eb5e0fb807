"""``nlp.pipe(texts, n_process=2)``: forked workers after torch ran (Linux's default), spawned
workers that receive the pipeline by pickle (macOS's and Windows' default)."""

import json
import os
import pickle
import signal
import subprocess
import sys

import pytest
import spacy

try:
    from .transformer_fixtures import ODD_TEXTS, TEXTCAT_TRAIN, make_trf_nlp, textcat_examples, train_steps, write_tiny_bert
except ImportError:  # tests/ is not a package
    from transformer_fixtures import ODD_TEXTS, TEXTCAT_TRAIN, make_trf_nlp, textcat_examples, train_steps, write_tiny_bert

try:
    from .test_crf_ner import FAST, TRAIN, make_examples
except ImportError:
    from test_crf_ner import FAST, TRAIN, make_examples

TEXTS = [text for text, _ in TEXTCAT_TRAIN] + ODD_TEXTS


def run_script(script: str, *args: str, timeout: int = 180) -> list:
    """Run ``script`` in a new Python process (its own process group, so that workers it
    forked are ended too if it hangs); return the JSON it printed last."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"nlp.pipe(n_process=2) did not finish in {timeout} s (a worker hung)")
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


FORK_SCRIPT = r"""
import json, sys
import multiprocessing
import spacy, torch
from spacy.language import Language

multiprocessing.set_start_method("fork")
torch.set_num_threads(2)

@Language.component("threads_probe")
def threads_probe(doc):
    # A product large enough to run on torch's thread pool, as a real encoder's does.
    x = torch.ones(384, 384)
    doc.user_data["sum"] = float((x @ x).sum())
    doc.user_data["threads"] = torch.get_num_threads()
    return doc

nlp = spacy.load(sys.argv[1])
nlp.add_pipe("threads_probe")
texts = json.loads(sys.argv[2])
def out(docs):
    return [[doc.cats, doc.user_data["threads"], doc.user_data["sum"]] for doc in docs]
single = out(nlp.pipe(texts))          # torch's thread pool now exists in this process
forked = out(nlp.pipe(texts, n_process=2, batch_size=4))
print(json.dumps([single, forked]))
"""


def test_forked_workers_after_torch_ran(tmp_path):
    """Once torch has run on several threads, a forked worker's first parallel operation
    waited forever for threads that fork does not copy; the workers now run torch on one
    thread each and give the parent's results."""
    import torch

    torch.set_num_threads(1)
    nlp = make_trf_nlp(write_tiny_bert(tmp_path / "model"), "trf_textcat")
    train_steps(nlp, textcat_examples(nlp), n_steps=3, learn_rate=0.002)
    nlp.to_disk(tmp_path / "pipeline")
    single, forked = run_script(FORK_SCRIPT, str(tmp_path / "pipeline"), json.dumps(TEXTS))
    assert [t for _, t, _ in single] == [2] * len(TEXTS)
    assert [t for _, t, _ in forked] == [1] * len(TEXTS)
    assert [s for _, _, s in forked] == [s for _, _, s in single]
    for (cats_single, _, _), (cats_forked, _, _) in zip(single, forked):
        assert cats_single.keys() == cats_forked.keys()
        for label in cats_single:
            assert cats_forked[label] == pytest.approx(cats_single[label], abs=1e-5)


def test_fork_before_torch_ran_keeps_torchs_threads():
    """A process forked before hybridnlp ran torch keeps torch's own thread setting."""
    code = (
        "import os, torch, hybridnlp.components._forking\n"
        "torch.set_num_threads(2)\n"
        "r, w = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.write(w, str(torch.get_num_threads()).encode()); os._exit(0)\n"
        "os.waitpid(pid, 0); print(os.read(r, 8).decode())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "2"


SPAWN_SCRIPT = r"""
import json, sys
import multiprocessing
import spacy

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    nlp = spacy.load(sys.argv[1])
    texts = json.loads(sys.argv[2])
    def out(docs):
        return [[[e.start, e.end, e.label_] for e in doc.ents] for doc in docs]
    print(json.dumps([out(nlp.pipe(texts)), out(nlp.pipe(texts, n_process=2, batch_size=3))]))
"""


@pytest.fixture(scope="module")
def fast_ner():
    nlp = spacy.blank("en")
    nlp.add_pipe("rule_ner")
    nlp.add_pipe("crf_ner", config=FAST)
    nlp.initialize(lambda: make_examples(nlp))
    return nlp


def test_fast_ner_pipeline_pickles(fast_ner):
    """crfsuite's tagger cannot be pickled; the component pickles its model bytes instead."""
    texts = [" ".join(words) for words, _ in TRAIN] + ["Merkel visited Google in Paris ."] + ODD_TEXTS
    copy = pickle.loads(pickle.dumps(fast_ner))
    for a, b in zip(fast_ner.pipe(texts), copy.pipe(texts)):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        assert list(a.spans["crf_ner"].attrs["scores"]) == list(b.spans["crf_ner"].attrs["scores"])
    untrained = spacy.blank("en")
    untrained.add_pipe("crf_ner")
    assert not pickle.loads(pickle.dumps(untrained)).get_pipe("crf_ner").is_initialized


def test_spawned_workers(fast_ner, tmp_path):
    fast_ner.to_disk(tmp_path / "pipeline")
    texts = [" ".join(words) for words, _ in TRAIN] + ["Merkel visited Google in Paris ."] + ODD_TEXTS
    single, spawned = run_script(SPAWN_SCRIPT, str(tmp_path / "pipeline"), json.dumps(texts))
    assert any(single)
    assert spawned == single
