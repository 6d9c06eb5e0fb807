"""``llm_ner``: entity prompts, answer parsing, finding the entities in the text, per-type
precision measured on dev as the spans' confidence, the llm profile for NER."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

try:
    from .llm_fixtures import write_tiny_causal_lm
    from .transformer_fixtures import NER_TRAIN, ODD_TEXTS, ner_examples
except ImportError:  # tests/ is not a package
    from llm_fixtures import write_tiny_causal_lm
    from transformer_fixtures import NER_TRAIN, ODD_TEXTS, ner_examples

from hybridnlp.components.llm.llm_ner import find_entity, parse_entities

REPO = Path(__file__).resolve().parents[1]


def _examples(nlp, data=NER_TRAIN):
    return ner_examples(nlp, data)


def _ner_nlp(**config):
    nlp = spacy.blank("en")
    nlp.add_pipe("llm_ner", config={"backend": {"@misc": "test.GazetteerLLM.v1"}, **config})
    return nlp


@pytest.mark.parametrize("answer,expected", [
    ("PER: John Smith\nLOC: Paris", [("PER", "John Smith"), ("LOC", "Paris")]),
    ("- per: \"John\"\n2. LOC: Paris; London\n* ORG: NONE", [("PER", "John"), ("LOC", "Paris"), ("LOC", "London")]),
    ("NONE", []), ("", []), ("FOO: bar\nno colon here\nPER:", []),
    ("**LOC**: New York", [("LOC", "New York")]),
])
def test_parse_entities(answer, expected):
    assert parse_entities(answer, ["PER", "LOC", "ORG"]) == expected


def test_find_entity():
    nlp = spacy.blank("en")
    doc = nlp("Paris and paris, not Parisian; New  York in the U.S. today. Paris!")
    assert [doc[s:e].text for s, e in find_entity(doc, "Paris")] == ["Paris", "Paris"]  # exact case first
    assert [doc[s:e].text for s, e in find_entity(doc, "PARIS")] == ["Paris", "paris", "Paris"]
    assert [doc[s:e].text for s, e in find_entity(doc, "New York")] == ["New  York"]
    assert [doc[s:e].text for s, e in find_entity(doc, "U.S.")] == ["U.S."]
    assert find_entity(doc, "Berlin") == [] and find_entity(doc, "  ") == []
    assert [doc[s:e].text for s, e in find_entity(doc, "ew Yor")] == []  # not inside a word


def test_spans_confidence_from_dev_precision():
    nlp = _ner_nlp(n_examples=1)
    train = _examples(nlp)
    # dev: John Smith (PER, right), Paris (LOC, right), Apple tagged O (ORG proposed, wrong)
    dev_data = [("John Smith visited Paris .".split(), ["B-PER", "I-PER", "O", "B-LOC", "O"]),
                ("the apple is red .".split(), ["O"] * 5)]
    dev = _examples(nlp, dev_data)
    nlp.initialize(lambda: train)
    pipe = nlp.get_pipe("llm_ner")
    pipe.initialize(lambda: train, nlp=nlp, dev_corpus=lambda _: dev)
    assert pipe.labels == ("LOC", "ORG", "PER")
    assert pipe.cfg["precision"] == {"LOC": [1, 1], "ORG": [0, 1], "PER": [1, 1]}
    assert pipe.confidence("PER") == pytest.approx(3 / 3.5) and pipe.confidence("ORG") == pytest.approx(2 / 3.5)
    prompt = pipe.prompt("x")
    assert f"Examples:\nText: {' '.join(NER_TRAIN[0][0])}\nEntities:\nPER: John Smith\nLOC: Paris\n\n" in prompt
    doc = nlp("Mary Jones moved from London to Apple in New York .")
    assert [(e.text, e.label_) for e in doc.ents] == [("Mary Jones", "PER"), ("London", "LOC"), ("Apple", "ORG"),
                                                       ("New York", "LOC")]
    assert doc.spans["llm_ner"].attrs["scores"] == [pytest.approx(pipe.confidence(e.label_)) for e in doc.ents]


def test_pipe_agrees_with_call_odd_inputs_and_round_trip(tmp_path):
    nlp = _ner_nlp(save_io=True, max_text_chars=60)
    nlp.initialize(lambda: _examples(nlp))
    backend = nlp.get_pipe("llm_ner").backend
    long_text = "John Smith lives in Paris . " * 200
    texts = ODD_TEXTS + ["Mary Jones works at Google in London .", long_text]
    with pytest.warns(UserWarning, match="1 of 2 texts were cut"):  # the last batch
        piped = list(nlp.pipe(texts, batch_size=4))
    assert len(backend.asked) == len([t for t in texts if t.strip()])  # empty ones not sent
    with pytest.warns(UserWarning):
        called = [nlp(t) for t in texts]
    ents = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in piped]
    assert ents == [[(e.start, e.end, e.label_) for e in doc.ents] for doc in called]
    assert [e.text for e in piped[-2].ents] == ["Mary Jones", "Google", "London"]
    # The model saw only the first 60 characters, but the words it named are found
    # everywhere in the doc.
    assert len(piped[-1].ents) == 400
    assert piped[0].user_data["llm_io"]["llm_ner"] == {"prompt": None, "response": None}
    nlp.to_disk(tmp_path / "ner")
    loaded = spacy.load(tmp_path / "ner")
    with pytest.warns(UserWarning):
        again = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in loaded.pipe(texts, batch_size=4)]
    assert again == ents
    (tmp_path / "ner" / "llm_ner" / "cfg").write_text("[1, 2]", encoding="utf8")
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "ner")


def test_errors():
    nlp = _ner_nlp()
    with pytest.raises(ValueError, match="E100"):
        nlp("not initialized")
    with pytest.raises(ValueError, match="E101"):
        nlp.get_pipe("llm_ner").initialize(lambda: _examples(nlp, [(["no", "entities"], ["O", "O"])]), nlp=nlp)
    with pytest.raises(ValueError, match="E532"):
        nlp.get_pipe("llm_ner").initialize(lambda: _examples(nlp), nlp=nlp, label_texts={"GPE": "a country"})
    for config, code in [({"prior_hits": -1}, "E104"), ({"prior_hits": 0, "prior_misses": 0}, "E104"),
                         ({"calibration_docs": -1}, "E104"), ({"template": "{text} only"}, "E548")]:
        with pytest.raises(ValueError, match=code):
            _ner_nlp(**config)


def test_llm_profile_for_ner_trains_and_loads_in_a_fresh_process(tmp_path):
    from hybridnlp.training import train

    model_dir = write_tiny_causal_lm(tmp_path / "lm")
    overrides = {"paths.lm": str(model_dir), "components.llm_ner.calibration_docs": 4,
                 "components.llm_ner.backend.max_new_tokens": 6, "components.llm_ner.save_io": True}
    nlp = train("llm", REPO / "corpora" / "tiny_ner", tmp_path / "out", quiet=True, overrides=overrides)
    pipe = nlp.get_pipe("llm_ner")
    assert nlp.pipe_names == ["llm_ner"] and set(pipe.labels) >= {"PERSON", "LOC"}
    assert set(pipe.cfg["precision"]) == set(pipe.labels)  # measured on the first 4 dev texts
    texts = ["Mary Jones flew to London .", "", "the weather in Paris"]
    docs = list(nlp.pipe(texts))
    expected = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]
    # the random model ran on the text: a prompt with the types and an answer (of noise)
    io = docs[0].user_data["llm_io"]["llm_ner"]
    assert "- PERSON" in io["prompt"] and isinstance(io["response"], str)
    code = ("import json, sys, spacy; nlp = spacy.load(sys.argv[1]); "
            "print(json.dumps([[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(json.loads(sys.argv[2]))]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out"), json.dumps(texts)],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[list(s) for s in doc] for doc in expected]


def test_a_label_list_is_enough():
    nlp = _ner_nlp()
    nlp.get_pipe("llm_ner").initialize(lambda: [], nlp=nlp, labels=["PER", "LOC"], label_texts={"PER": "a person"})
    assert "- PER: a person\n- LOC\n" in nlp.get_pipe("llm_ner").prompt("x")
    assert [(e.text, e.label_) for e in nlp("John Smith is in Paris , not at Google .").ents] == [
        ("John Smith", "PER"), ("Paris", "LOC")]  # the model's ORG answer is not a type asked for
