"""linear_probe of the text classification heads: the output layer is fitted on the frozen
encoder's features before training, so an initialized (untrained) pipeline already classifies
its training texts; the setting is validated and survives saving."""

import numpy
import pytest

try:
    from .transformer_fixtures import (  # noqa: F401
        MULTILABEL_TRAIN, TEXTCAT_TRAIN, make_trf_nlp, multilabel_examples, textcat_examples, tiny_bert_dir,
        tiny_bert_master,
    )
except ImportError:  # tests/ is not a package
    from transformer_fixtures import (  # noqa: F401
        MULTILABEL_TRAIN, TEXTCAT_TRAIN, make_trf_nlp, multilabel_examples, textcat_examples, tiny_bert_dir,
        tiny_bert_master,
    )


def initialized(model_dir, head, make_examples, probe):
    import torch
    from thinc.api import fix_random_seed

    torch.set_num_threads(1)
    nlp = make_trf_nlp(model_dir, head, {"linear_probe": probe})
    examples = make_examples(nlp)
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    return nlp


def test_probe_classifies_the_training_texts_before_any_update(tiny_bert_dir):
    nlp = initialized(tiny_bert_dir, "trf_textcat", textcat_examples, 100)
    docs = list(nlp.pipe(text for text, _ in TEXTCAT_TRAIN))
    predicted = [max(doc.cats, key=doc.cats.get) for doc in docs]
    # Six texts, 32-dimensional features: the probe separates them.
    assert predicted == [gold for _, gold in TEXTCAT_TRAIN]
    # The examples' own docs were not annotated by the probe's forward passes.
    assert all(doc._.hybrid_cats for doc in docs)


def test_without_probe_the_head_starts_from_zeros(tiny_bert_dir):
    nlp = initialized(tiny_bert_dir, "trf_textcat", textcat_examples, 0)
    W = nlp.get_pipe("trf_textcat").model.get_ref("output_layer").get_param("W")
    assert not numpy.any(W)
    doc = nlp("a very good movie")
    assert doc.cats == pytest.approx({"negative": 0.5, "positive": 0.5})


def test_probe_uses_at_most_the_given_number_of_examples(tiny_bert_dir):
    from hybridnlp.components.transformer._probe import fit_linear_probe

    nlp = initialized(tiny_bert_dir, "trf_textcat", textcat_examples, 0)
    head = nlp.get_pipe("trf_textcat")
    assert fit_linear_probe(head, textcat_examples(nlp), nlp, 4) == 4
    assert fit_linear_probe(head, textcat_examples(nlp), nlp, 100) == len(TEXTCAT_TRAIN)
    assert numpy.any(head.model.get_ref("output_layer").get_param("W"))


def test_probe_multilabel(tiny_bert_dir):
    nlp = initialized(tiny_bert_dir, "trf_textcat_multilabel", multilabel_examples, 100)
    for doc, (_, gold) in zip(nlp.pipe(text for text, _ in MULTILABEL_TRAIN), MULTILABEL_TRAIN):
        assert {label for label, p in doc.cats.items() if p >= 0.5} == set(gold)


def test_probe_then_training_and_round_trip(tiny_bert_dir, tmp_path):
    import spacy

    nlp = initialized(tiny_bert_dir, "trf_textcat", textcat_examples, 100)
    optimizer = nlp.resume_training()
    optimizer.learn_rate = 1e-3
    examples = textcat_examples(nlp)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    texts = [text for text, _ in TEXTCAT_TRAIN] + ["", "😀"]
    before = [doc.cats for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("trf_textcat").cfg["linear_probe"] == 100
    after = [doc.cats for doc in loaded.pipe(texts)]
    for a, b in zip(before, after):
        assert a == pytest.approx(b, abs=1e-6)


def test_probe_needs_the_transformer(tiny_bert_dir):
    from hybridnlp.errors import Errors

    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"linear_probe": 10})
    examples = textcat_examples(nlp)
    nlp.get_pipe("transformer").initialize(lambda: examples)
    with pytest.raises(ValueError, match=r"\[E509\]"):
        nlp.get_pipe("trf_textcat").initialize(lambda: examples)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "100", None])
def test_bad_probe_size_is_refused(tiny_bert_dir, bad):
    with pytest.raises(ValueError, match="linear_probe"):
        make_trf_nlp(tiny_bert_dir, "trf_textcat", {"linear_probe": bad})
