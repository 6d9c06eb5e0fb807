"""The ``hybrid`` NER profile: trains the fast and accurate parts (or reuses trained ones),
fits span_fusion on dev, and saves one pipeline that loads in a fresh process."""

import json
import shutil
from pathlib import Path

import pytest
import spacy

try:
    from .transformer_fixtures import predict_in_fresh_process, tiny_bert_dir, tiny_bert_master  # noqa: F401
except ImportError:  # tests/ is not a package
    from transformer_fixtures import predict_in_fresh_process, tiny_bert_dir, tiny_bert_master  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpora" / "tiny_ner"
TEXTS = ["Mary Jones cannot log in to her account in London since yesterday .", "", "😀 Berlin"]


def accurate_overrides(model_dir, prefix=""):
    return {
        f"{prefix}paths.transformer": str(model_dir),
        f"{prefix}training.max_steps": 4,
        f"{prefix}training.eval_frequency": 2,
        f"{prefix}training.optimizer.learn_rate.warmup_steps": 1,
    }


def test_hybrid_trains_its_parts_and_loads_in_a_fresh_process(tiny_bert_dir, tmp_path):
    from hybridnlp.training import train

    nlp = train("hybrid", CORPUS, tmp_path / "out", overrides=accurate_overrides(tiny_bert_dir, "accurate."),
                quiet=True)
    assert nlp.pipe_names == ["transformer", "trf_ner", "rule_ner", "crf_ner", "span_fusion"]
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert set(meta["hybridnlp"]["parts_train_seconds"]) == {"fast", "accurate"}
    fusion = nlp.get_pipe("span_fusion")
    assert fusion.is_initialized and fusion.sources == ["trf_ner", "crf_ner"]
    shutil.rmtree(tiny_bert_dir)
    expected = [
        {"cats": doc.cats, "ents": [[e.start, e.end, e.label_] for e in doc.ents]} for doc in nlp.pipe(TEXTS)
    ]
    assert predict_in_fresh_process(tmp_path / "out", TEXTS) == expected
    doc = spacy.load(tmp_path / "out")(TEXTS[0])
    group = doc.spans["hybrid"]
    assert len(group.attrs["scores"]) == len(group.attrs["sources"]) == len(group)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(s.start, s.end, s.label_) for s in group]


def test_hybrid_reuses_trained_parts(tiny_bert_dir, tmp_path):
    from hybridnlp.training import train

    train("fast", CORPUS, tmp_path / "fast", quiet=True)
    train("accurate", CORPUS, tmp_path / "accurate", overrides=accurate_overrides(tiny_bert_dir), quiet=True)
    nlp = train("hybrid", CORPUS, tmp_path / "out", quiet=True,
                overrides={"paths.fast": str(tmp_path / "fast"), "paths.accurate": str(tmp_path / "accurate")})
    # The parts' training time counts towards the hybrid pipeline's.
    parts = nlp.meta["hybridnlp"]["parts_train_seconds"]
    assert set(parts) == {"fast", "accurate"}
    assert nlp.meta["hybridnlp"]["train_seconds"] >= sum(parts.values())
    fast = spacy.load(tmp_path / "fast")
    hybrid_doc, fast_doc = nlp(TEXTS[0]), fast(TEXTS[0])
    assert [(s.start, s.end, s.label_) for s in hybrid_doc.spans["crf_ner"]] == \
        [(s.start, s.end, s.label_) for s in fast_doc.spans["crf_ner"]]


def test_bench_reuses_the_parts_it_has(tiny_bert_dir, tmp_path):
    from hybridnlp.corpora import resolve_corpus
    from hybridnlp.harness.runner import run_bench
    from hybridnlp.training import train

    name = resolve_corpus(CORPUS).name
    # accurate comes from --models, fast is trained by the run itself before hybrid.
    train("accurate", CORPUS, tmp_path / "models" / name / "accurate", overrides=accurate_overrides(tiny_bert_dir),
          quiet=True)
    results = run_bench([str(CORPUS)], ["fast", "hybrid"], tmp_path / "bench", models=tmp_path / "models")
    runs = {run["system"]: run for run in results["runs"]}
    assert runs["hybrid"]["status"] == "ok", runs["hybrid"]
    hybrid = spacy.load(runs["hybrid"]["model_path"])
    accurate = spacy.load(tmp_path / "models" / name / "accurate")
    assert hybrid.meta["hybridnlp"]["parts_train_seconds"] == {
        "fast": runs["fast"]["train_seconds"], "accurate": accurate.meta["hybridnlp"]["train_seconds"]}


def test_a_part_that_is_not_a_pipeline_is_refused(tmp_path):
    from hybridnlp.training import train

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"\[E202\]"):
        train("hybrid", CORPUS, tmp_path / "out", quiet=True,
              overrides={"paths.fast": str(tmp_path / "empty"), "paths.accurate": str(tmp_path / "empty")})


def test_part_overrides_only_for_parts_the_config_has():
    from hybridnlp.profiles import resolve_profile
    from hybridnlp.training import part_names, split_part_overrides

    hybrid = part_names(resolve_profile("hybrid", "ner"))
    assert hybrid == ["accurate", "fast"]
    own, parts = split_part_overrides({"accurate.training.max_steps": 5, "paths.fast": "x"}, hybrid)
    assert own == {"paths.fast": "x"} and parts == {"accurate": {"training.max_steps": 5}}
    # The accurate profile has no parts: such an override stays (and spaCy reports it).
    own, parts = split_part_overrides({"accurate.training.max_steps": 5},
                                      part_names(resolve_profile("accurate", "ner")))
    assert own == {"accurate.training.max_steps": 5} and parts == {}


def test_hybrid_textcat_trains_its_parts_and_loads_in_a_fresh_process(tiny_bert_dir, tmp_path):
    from hybridnlp.training import train

    corpus = REPO / "corpora" / "tiny_textcat"
    nlp = train("hybrid", corpus, tmp_path / "out", overrides=accurate_overrides(tiny_bert_dir, "accurate."),
                quiet=True)
    assert nlp.pipe_names == ["transformer", "trf_textcat", "tfidf_textcat", "cats_fusion"]
    fusion = nlp.get_pipe("cats_fusion")
    assert fusion.is_initialized and sum(fusion.weights_by_source().values()) == pytest.approx(1.0)
    shutil.rmtree(tiny_bert_dir)
    expected = [
        {"cats": doc.cats, "ents": [[e.start, e.end, e.label_] for e in doc.ents]} for doc in nlp.pipe(TEXTS)
    ]
    assert predict_in_fresh_process(tmp_path / "out", TEXTS) == expected
    doc = spacy.load(tmp_path / "out")(TEXTS[0])
    assert doc.cats == doc._.hybrid_cats["hybrid"]
    assert set(doc._.hybrid_cats) == {"trf_textcat", "tfidf_textcat", "hybrid"}
