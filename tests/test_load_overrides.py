"""``spacy.load(path, config={...})``: the settings that say how a fitted component's output
is used or written (where it goes, whether it sets doc.ents or doc.cats, decision and routing
thresholds) take the config's value; what was learned comes from the saved pipeline."""

import spacy

try:
    from . import test_cascade, test_span_fusion, test_tfidf_textcat
    from .test_crf_ner import FAST, TRAIN, make_examples
    from .transformer_fixtures import make_trf_nlp, ner_examples, train_steps, write_tiny_bert
except ImportError:  # tests/ is not a package
    import test_cascade
    import test_span_fusion
    import test_tfidf_textcat
    from test_crf_ner import FAST, TRAIN, make_examples
    from transformer_fixtures import make_trf_nlp, ner_examples, train_steps, write_tiny_bert


def spans(doc, key):
    return [(s.start, s.end, s.label_) for s in doc.spans[key]]


def test_tfidf_textcat_settings(tmp_path):
    nlp = test_tfidf_textcat.make_nlp(C=1.0)
    nlp.initialize(lambda: test_tfidf_textcat.exclusive_examples(nlp))
    nlp.to_disk(tmp_path / "p")
    text = "the battery died after an hour"
    overrides = {"set_doc_cats": False, "source": "svm", "threshold": 0.9}
    loaded = spacy.load(tmp_path / "p", config={"components": {"textcat": overrides}})
    assert {key: loaded.get_pipe("textcat").cfg[key] for key in overrides} == overrides
    doc = loaded(text)
    assert doc.cats == {} and doc._.hybrid_cats["svm"] == nlp(text)._.hybrid_cats["textcat"]
    assert spacy.load(tmp_path / "p")(text).cats == nlp(text).cats  # no override: as saved


def test_rule_ner_and_crf_ner(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("rule_ner")
    nlp.add_pipe("crf_ner", config=FAST)
    nlp.initialize(lambda: make_examples(nlp))
    nlp.to_disk(tmp_path / "p")
    text = " ".join(TRAIN[0][0])
    config = {"components": {"rule_ner": {"source": "rules", "set_ents": False},
                             "crf_ner": {"gazetteer_source": "rules", "set_ents": False}}}
    loaded = spacy.load(tmp_path / "p", config=config)
    doc, expected = loaded(text), nlp(text)
    assert doc.ents == () and expected.ents
    assert spans(doc, "rules") == spans(expected, "rule_ner")
    assert spans(doc, "crf_ner") == spans(expected, "crf_ner")  # the gazetteer still read
    assert loaded.get_pipe("crf_ner").cfg["gazetteer_source"] == "rules"


def test_span_fusion_settings(tmp_path):
    nlp = test_span_fusion.fitted()
    nlp.to_disk(tmp_path / "p")
    config = {"components": {"span_fusion": {"threshold": 0.99, "key": "fused", "set_ents": False}}}
    loaded = spacy.load(tmp_path / "p", config=config)
    fusion = loaded.get_pipe("span_fusion")
    assert fusion.cfg["threshold"] == 0.99 and fusion.cfg["weights"] == nlp.get_pipe("span_fusion").cfg["weights"]
    for text in test_span_fusion.SENTENCES:
        doc, expected = loaded(text), nlp(text)
        assert doc.ents == () and "hybrid" not in doc.spans
        scores = dict(zip(spans(expected, "hybrid"), expected.spans["hybrid"].attrs["scores"]))
        assert spans(doc, "fused") == [span for span, score in scores.items() if score >= 0.99]


def test_cascade_route_threshold(tmp_path):
    nlp = test_cascade.fitted()
    nlp.to_disk(tmp_path / "p")
    texts = test_cascade.TEXTS
    for threshold, route in ((0.0, "cheap"), (1.0, "expensive")):
        config = {"components": {"cascade": {"route_threshold": threshold}}}
        loaded = spacy.load(tmp_path / "p", config=config)
        assert loaded.get_pipe("cascade").route_threshold == threshold
        assert {doc._.hybrid_route for doc in loaded.pipe(texts)} == {route}
    saved = spacy.load(tmp_path / "p").get_pipe("cascade")
    assert saved.route_threshold == nlp.get_pipe("cascade").route_threshold  # fitted on dev


def test_trf_ner(tmp_path):
    import torch

    torch.set_num_threads(1)
    nlp = make_trf_nlp(write_tiny_bert(tmp_path / "model"), "trf_ner")
    train_steps(nlp, ner_examples(nlp), n_steps=3, learn_rate=0.003)
    nlp.to_disk(tmp_path / "p")
    config = {"components": {"trf_ner": {"set_ents": False, "source": "tagger"}}}
    loaded = spacy.load(tmp_path / "p", config=config)
    text = "Mary Jones works at Google in London ."
    doc, expected = loaded(text), nlp(text)
    assert doc.ents == () and spans(doc, "tagger") == spans(expected, "trf_ner")
