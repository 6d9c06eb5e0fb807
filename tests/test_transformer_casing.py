"""case_types: each wordpiece's capitalisation as its token type (transformer/_casing.py)."""

import shutil

import numpy
import pytest
import spacy
from spacy.tokens import Doc

try:
    from .transformer_fixtures import (
        NER_TRAIN, ODD_TEXTS, doc_spans, gold_spans, make_trf_nlp, ner_examples,
        predict_in_fresh_process, tiny_bert_dir, tiny_bert_master, train_steps, write_tiny_bert,
    )
except ImportError:  # tests/ is not a package
    from transformer_fixtures import (
        NER_TRAIN, ODD_TEXTS, doc_spans, gold_spans, make_trf_nlp, ner_examples,
        predict_in_fresh_process, tiny_bert_dir, tiny_bert_master, train_steps, write_tiny_bert,
    )

from hybridnlp.components.transformer._casing import CONFIG_KEY, N_CASES, wordpiece_cases

# The NER head without its own casing features: whatever it knows of case comes from the
# token types.
HEAD_WITHOUT_CASING = {
    "model": {
        "@architectures": "hybridnlp.TokenClassifier.v1",
        "tok2vec": {
            "@architectures": "hybridnlp.TransformerListener.v1",
            "pooling": {"@layers": "reduce_mean.v1"},
        },
    }
}


def hidden(nlp, texts):
    trf = nlp.get_pipe("transformer")
    batch = trf.model.predict([nlp.make_doc(t) for t in texts])
    return batch.model_output.last_hidden_state.detach().cpu().numpy()


def test_cases_of_wordpieces():
    texts = ["Apple iPhone USA the 42 A", "ÉCOLE ß İstanbul"]
    # Offsets as a tokenizer would give them for whole words, plus a special piece (0, 0)
    # and padding.
    spans = [
        [(0, 0), (0, 5), (6, 12), (13, 16), (17, 20), (21, 23), (24, 25), (0, 0)],
        [(0, 0), (0, 5), (6, 7), (8, 16), (0, 0), (0, 0), (0, 0), (0, 0)],
    ]
    cases = wordpiece_cases(texts, numpy.array(spans))
    #                         CLS Apple iPhone USA the 42 A  SEP
    assert cases[0].tolist() == [0, 1, 3, 2, 0, 0, 1, 0]
    #                         CLS ÉCOLE ß İstanbul pad...
    assert cases[1].tolist() == [0, 2, 0, 1, 0, 0, 0, 0]
    # A continuation piece is cased by its own characters ("Jo" + "##NES" -> Title, UPPER).
    assert wordpiece_cases(["JoNES"], numpy.array([[(0, 2), (2, 5)]])).tolist() == [[1, 2]]
    assert wordpiece_cases([""], numpy.zeros((1, 2, 2), dtype=int)).tolist() == [[0, 0]]


def test_grown_model_starts_as_the_pretrained_one(tiny_bert_dir):
    plain = make_trf_nlp(tiny_bert_dir, "trf_ner")
    cased = make_trf_nlp(tiny_bert_dir, "trf_ner", case_types=True)
    examples = ner_examples(plain)
    plain.initialize(lambda: examples)
    cased.initialize(lambda: ner_examples(cased))
    transformer = cased.get_pipe("transformer").model.transformer
    assert transformer.config.type_vocab_size == 2 + N_CASES
    assert getattr(transformer.config, CONFIG_KEY) == 2
    texts = ["Mary Jones works at GOOGLE in London .", "iPhone", "the end"]
    numpy.testing.assert_allclose(hidden(cased, texts), hidden(plain, texts), atol=1e-6)
    assert cased.get_pipe("transformer").model.copy().attrs["case_types"]
    # Initializing again (e.g. resuming) does not grow the table twice.
    cased.get_pipe("transformer").model.initialize()
    assert transformer.config.type_vocab_size == 2 + N_CASES


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    model_dir = write_tiny_bert(tmp_path_factory.mktemp("cased-bert") / "model")
    nlp = make_trf_nlp(model_dir, "trf_ner", head_config=HEAD_WITHOUT_CASING, case_types=True)
    history = train_steps(nlp, ner_examples(nlp), n_steps=40, learn_rate=0.003)
    return nlp, history, model_dir


def test_overfit_sees_case_through_token_types(trained):
    nlp, history, _ = trained
    assert history[-1] < history[0] * 0.2
    for words, tags in NER_TRAIN:
        assert doc_spans(nlp(Doc(nlp.vocab, words=words))) == gold_spans(words, tags)
    # The uncased tokenizer gives both texts the same wordpieces and the head has no casing
    # features: the difference comes from the token types alone.
    cased = "Mary Jones works at Google in London ."
    tokenizer = nlp.get_pipe("transformer").model.tokenizer
    assert tokenizer(cased)["input_ids"] == tokenizer(cased.lower())["input_ids"]
    states = hidden(nlp, [cased, cased.lower()])
    assert numpy.abs(states[0] - states[1]).max() > 1e-3


def test_round_trip_and_odd_inputs(trained, tmp_path):
    nlp, _, model_dir = trained
    texts = [" ".join(words) for words, _ in NER_TRAIN] + ODD_TEXTS + ["MARY JONES IN LONDON"]
    expected = [nlp(text) for text in texts]
    piped = list(nlp.pipe(texts, batch_size=3))
    for doc, alone in zip(piped, expected):
        assert doc.spans["trf_ner"].attrs["scores"] == pytest.approx(alone.spans["trf_ner"].attrs["scores"], abs=1e-5)
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(model_dir)
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("transformer").model.attrs["case_types"]
    for text, doc in zip(texts, expected):
        doc2 = loaded(text)
        assert doc_spans(doc2) == doc_spans(doc)
        assert doc2.spans["trf_ner"].attrs["scores"] == doc.spans["trf_ner"].attrs["scores"]
    fresh = predict_in_fresh_process(tmp_path / "pipeline", texts)
    assert [[tuple(e) for e in out["ents"]] for out in fresh] == [doc_spans(doc) for doc in expected]


def test_model_without_token_types(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    model_dir = write_tiny_bert(tmp_path / "bert")
    config = DistilBertConfig(vocab_size=200, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        (model_dir / name).unlink(missing_ok=True)
    DistilBertModel(config).save_pretrained(str(model_dir))
    nlp = make_trf_nlp(model_dir, "trf_ner", case_types=True)
    with pytest.raises(ValueError, match="E515"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_saved_weights_decide(tiny_bert_dir, tmp_path):
    # thinc stores the model's attrs with its weights, so a pipeline saved without case
    # types keeps running without them even if its config is edited to ask for them (the
    # token-type table they need was never grown): no silent mismatch either way.
    nlp = make_trf_nlp(tiny_bert_dir, "trf_ner")
    nlp.initialize(lambda: ner_examples(nlp))
    nlp.to_disk(tmp_path / "plain")
    config_file = tmp_path / "plain" / "config.cfg"
    config = spacy.util.load_config(config_file)
    config["components"]["transformer"]["model"]["case_types"] = True
    config.to_disk(config_file)
    edited = spacy.load(tmp_path / "plain")
    assert not edited.get_pipe("transformer").model.attrs["case_types"]
    text = "Mary Jones works at GOOGLE"
    numpy.testing.assert_array_equal(hidden(edited, [text]), hidden(nlp, [text]))
