"""``zeroshot_textcat``: label vectors from descriptions (and a few examples), cosine
similarity of sentence embeddings, softmax; the ``zeroshot`` profile.

The encoder is a tiny random BERT, so what is tested is the arithmetic (the embedding the
model would give, the label vectors, the probabilities), not zero-shot quality: README has
that on the real corpora.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.training import Example

try:
    from .transformer_fixtures import ODD_TEXTS, TEXTCAT_TRAIN, make_trf_nlp, tiny_bert_dir, tiny_bert_master
except ImportError:  # tests/ is not a package
    from transformer_fixtures import ODD_TEXTS, TEXTCAT_TRAIN, make_trf_nlp, tiny_bert_dir, tiny_bert_master

from hybridnlp.components.llm.zeroshot_textcat import fit_scale, label_name_text, sentence_vector

REPO = Path(__file__).resolve().parents[1]
DESCRIPTIONS = {"positive": "I love this movie", "negative": "I hate this film"}


def _examples(nlp, data=TEXTCAT_TRAIN):
    labels = sorted({label for _, label in data})
    return [Example.from_dict(nlp.make_doc(text), {"cats": {l: float(l == label) for l in labels}})
            for text, label in data]


def _zeroshot_nlp(model_dir, config=None, label_texts=DESCRIPTIONS, data=TEXTCAT_TRAIN):
    nlp = make_trf_nlp(model_dir, "zeroshot_textcat", config or {})
    examples = _examples(nlp, data)
    nlp.initialize(lambda: examples)
    if label_texts is not None:  # label_texts is an initialize setting: embed again with it
        nlp.get_pipe("zeroshot_textcat").initialize(lambda: examples, nlp=nlp, label_texts=label_texts)
    return nlp


def _hf_mean_pooling(model_dir, text):
    """The sentence embedding as sentence-transformers computes it (mean over the attention
    mask of the last hidden states), straight from transformers."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    batch = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return ((states * mask).sum(1) / mask.sum(1))[0].double().numpy()


def test_sentence_vector_is_the_models_own_mean_pooling(tiny_bert_dir):
    nlp = _zeroshot_nlp(tiny_bert_dir)
    text = "the movie was good and the food was great"
    doc = nlp(text)
    np.testing.assert_allclose(sentence_vector(doc), _hf_mean_pooling(tiny_bert_dir, text), rtol=1e-4, atol=1e-5)


def test_a_text_equal_to_a_description_gets_that_label(tiny_bert_dir):
    nlp = _zeroshot_nlp(tiny_bert_dir)
    pipe = nlp.get_pipe("zeroshot_textcat")
    assert pipe.labels == ("negative", "positive")
    assert pipe.label_texts == DESCRIPTIONS
    for label, text in DESCRIPTIONS.items():
        doc = nlp(text)
        sims = pipe.similarities([doc])[0]
        assert sims[pipe.labels.index(label)] == pytest.approx(1.0)
        assert max(doc.cats, key=doc.cats.get) == label
        assert sum(doc.cats.values()) == pytest.approx(1.0)
        assert doc._.hybrid_cats["zeroshot_textcat"] == doc.cats
        # softmax(scale * cosine), computed here from the similarities
        expected = np.exp(20.0 * sims) / np.exp(20.0 * sims).sum()
        np.testing.assert_allclose([doc.cats[l] for l in pipe.labels], expected, rtol=1e-9)


def test_label_names_and_template_describe_labels_without_a_text(tiny_bert_dir):
    data = [("I love it", "very_good"), ("I hate it", "not-good")]
    nlp = _zeroshot_nlp(tiny_bert_dir, {"template": "a {label} review"}, label_texts={"very_good": "great"},
                        data=data)
    assert nlp.get_pipe("zeroshot_textcat").label_texts == {"very_good": "great", "not-good": "a not good review"}
    assert label_name_text("card_arrival") == "card arrival"


def test_examples_per_label_join_the_description(tiny_bert_dir):
    """The "overfitting" test of a component that is not trained: its label vectors are
    exactly the normalised mean of the normalised embeddings of description and examples."""
    nlp = _zeroshot_nlp(tiny_bert_dir, {"examples_per_label": 2})
    pipe = nlp.get_pipe("zeroshot_textcat")
    # The first two training texts of each label, in corpus order.
    assert pipe.cfg["examples"] == {
        "positive": [TEXTCAT_TRAIN[0][0], TEXTCAT_TRAIN[1][0]],
        "negative": [TEXTCAT_TRAIN[3][0], TEXTCAT_TRAIN[4][0]],
    }

    def unit(text):
        v = sentence_vector(nlp(text))
        return v / np.linalg.norm(v)

    for i, label in enumerate(pipe.labels):
        texts = [DESCRIPTIONS[label]] + pipe.cfg["examples"][label]
        centroid = np.mean([unit(t) for t in texts], axis=0)
        np.testing.assert_allclose(pipe._prototypes[i], centroid / np.linalg.norm(centroid), rtol=1e-4, atol=1e-6)
    # Every training example that is an example of its label is now closer to it.
    for text, label in TEXTCAT_TRAIN[:2] + TEXTCAT_TRAIN[3:5]:
        sims = pipe.similarities([nlp(text)])[0]
        assert sims[pipe.labels.index(label)] > 0.5


def test_pipe_agrees_with_call_on_odd_and_long_texts(tiny_bert_dir):
    nlp = _zeroshot_nlp(tiny_bert_dir)
    long_text = " ".join(["the movie was good and the food was bad ."] * 500)  # ~5,000 tokens
    texts = ODD_TEXTS + [long_text, "I love this movie"]
    piped = list(nlp.pipe(texts, batch_size=4))
    for text, doc in zip(texts, piped):
        single = nlp(text)
        assert set(doc.cats) == {"negative", "positive"}
        assert sum(doc.cats.values()) == pytest.approx(1.0)
        for label in doc.cats:
            assert doc.cats[label] == pytest.approx(single.cats[label], abs=1e-5)
    for empty in piped[:3]:  # "", "   ", "\n\t \n": no text, every label equally likely
        assert empty.cats == {"negative": 0.5, "positive": 0.5}


def test_round_trip_without_the_model_directory(tiny_bert_dir, tmp_path):
    nlp = _zeroshot_nlp(tiny_bert_dir, {"examples_per_label": 1})
    texts = ["I love this movie", "terrible food", "", "emoji 😀 only"]
    before = [doc.cats for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "zs")
    shutil.rmtree(tiny_bert_dir)
    loaded = spacy.load(tmp_path / "zs")
    assert [doc.cats for doc in loaded.pipe(texts)] == before
    pipe = loaded.get_pipe("zeroshot_textcat")
    assert pipe.label_texts == DESCRIPTIONS and pipe.cfg["examples_per_label"] == 1
    fresh = make_trf_nlp(tmp_path / "absent", "zeroshot_textcat").get_pipe("zeroshot_textcat")
    fresh.from_bytes(pipe.to_bytes())
    np.testing.assert_array_equal(fresh._prototypes, pipe._prototypes)
    assert fresh.cfg == pipe.cfg


def test_errors(tiny_bert_dir, tmp_path):
    nlp = make_trf_nlp(tiny_bert_dir, "zeroshot_textcat")
    pipe = nlp.get_pipe("zeroshot_textcat")
    with pytest.raises(ValueError, match="E100"):
        pipe.predict([nlp.make_doc("text")])
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match="E532"):
        pipe.initialize(lambda: examples, nlp=nlp, label_texts={"positiv": "good"})
    with pytest.raises(ValueError, match="E533"):
        pipe.initialize(lambda: examples, nlp=nlp, label_texts={"positive": "  "})
    multi = [Example.from_dict(nlp.make_doc("good bad"), {"cats": {"positive": 1.0, "negative": 1.0}})]
    with pytest.raises(ValueError, match="E530"):
        pipe.initialize(lambda: multi, nlp=nlp)
    with pytest.raises(ValueError, match="E101"):
        pipe.initialize(lambda: [Example.from_dict(nlp.make_doc("x"), {})], nlp=nlp)
    # label_texts from a JSON file (as the profile passes it)
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"positive": "great fun"}), encoding="utf8")
    pipe.initialize(lambda: examples, nlp=nlp, label_texts=str(path))
    assert pipe.label_texts["positive"] == "great fun"
    # the transformer must run first
    with nlp.select_pipes(disable=["transformer"]):
        with pytest.raises(ValueError, match="E531"):
            nlp("no embeddings here")
    alone = spacy.blank("en").add_pipe("zeroshot_textcat")
    with pytest.raises(ValueError, match="E531"):
        alone.initialize(lambda: examples, nlp=spacy.blank("en"))
    for key, value in [("template", "no placeholder"), ("scale", 0), ("examples_per_label", -1), ("upstream", "")]:
        with pytest.raises(ValueError, match="E104"):
            spacy.blank("en").add_pipe("zeroshot_textcat", config={key: value})


def test_corrupt_or_missing_data(tiny_bert_dir, tmp_path):
    nlp = _zeroshot_nlp(tiny_bert_dir)
    nlp.to_disk(tmp_path / "zs")
    target = tmp_path / "zs" / "zeroshot_textcat"
    np.save(target / "prototypes.npy", np.zeros((3, 32)), allow_pickle=False)
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "zs")
    (target / "prototypes.npy").unlink()
    with pytest.raises(OSError, match="E102"):
        spacy.load(tmp_path / "zs")
    (target / "cfg.json").write_text("{not json", encoding="utf8")
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "zs")
    with pytest.raises(ValueError, match="E103"):
        nlp.get_pipe("zeroshot_textcat").from_bytes(b"\x00garbage")


def test_zeroshot_profile_initializes_only_and_loads_in_a_fresh_process(tiny_bert_dir, tmp_path):
    from hybridnlp.training import has_gradient_components, train

    corpus = REPO / "corpora" / "tiny_textcat"
    labels = {"refund_request": "I want my money back"}
    (tmp_path / "labels.json").write_text(json.dumps(labels), encoding="utf8")
    nlp = train("zeroshot", corpus, tmp_path / "out", quiet=True,
                overrides={"paths.transformer": str(tiny_bert_dir), "paths.label_texts": str(tmp_path / "labels.json")})
    assert nlp.pipe_names == ["transformer", "zeroshot_textcat"]
    assert not has_gradient_components(nlp)  # a transformer nobody listens to learns nothing
    pipe = nlp.get_pipe("zeroshot_textcat")
    assert len(pipe.labels) == 5 and pipe.label_texts["refund_request"] == labels["refund_request"]
    assert pipe.label_texts["card_lost"] == "card lost"
    texts = ["I want my money back", "Where is my parcel?"]
    expected = [doc.cats for doc in nlp.pipe(texts)]
    shutil.rmtree(tiny_bert_dir)
    code = ("import json, os, sys, spacy\n"
            "if os.environ.get('HYBRIDNLP_TEST_GPU') == '1': spacy.require_gpu()  # the test's device\n"
            "nlp = spacy.load(sys.argv[1])\n"
            "print(json.dumps([d.cats for d in nlp.pipe(json.loads(sys.argv[2]))]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out"), json.dumps(texts)],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
    assert max(expected[0], key=expected[0].get) == "refund_request"


def test_a_label_list_is_enough(tiny_bert_dir):
    """No examples at all: the labels (and their descriptions) are the whole input."""
    nlp = make_trf_nlp(tiny_bert_dir, "zeroshot_textcat")
    # spaCy's way to hand initialize its settings; nlp.initialize() then needs no examples
    nlp.config["initialize"]["components"]["zeroshot_textcat"] = {
        "labels": ["positive", "negative"], "label_texts": DESCRIPTIONS}
    nlp.initialize()
    pipe = nlp.get_pipe("zeroshot_textcat")
    assert pipe.labels == ("positive", "negative")  # the order given
    assert max(nlp("I hate this film").cats, key=nlp("I hate this film").cats.get) == "negative"
    with pytest.raises(TypeError):  # without labels, examples are needed (spaCy's E930)
        pipe.initialize(lambda: [], nlp=nlp)


def test_fit_scale_recovers_the_temperature_of_the_data():
    rng = np.random.RandomState(0)
    sims = rng.uniform(-0.2, 0.6, size=(4000, 6))
    z = 30.0 * sims
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    gold = np.array([rng.choice(6, p=row) for row in p])
    assert fit_scale(sims, gold) == pytest.approx(30.0, rel=0.1)


def test_dev_corpus_sets_the_temperature_not_the_predictions(tiny_bert_dir, tmp_path):
    nlp = _zeroshot_nlp(tiny_bert_dir)
    pipe = nlp.get_pipe("zeroshot_textcat")
    texts = [text for text, _ in TEXTCAT_TRAIN]
    before = [nlp(t).cats for t in texts]
    assert pipe.cfg["scale"] == 20.0 and pipe.cfg["scale_fitted_on"] == 0
    dev = _examples(nlp)
    pipe.initialize(lambda: dev, nlp=nlp, label_texts=DESCRIPTIONS, dev_corpus=lambda _: dev)
    assert pipe.cfg["scale_fitted_on"] == len(dev) and pipe.cfg["scale"] != 20.0
    after = [nlp(t).cats for t in texts]
    for a, b in zip(before, after):
        assert max(a, key=a.get) == max(b, key=b.get)
    nlp.to_disk(tmp_path / "fitted")
    assert spacy.load(tmp_path / "fitted").get_pipe("zeroshot_textcat").cfg["scale"] == pipe.cfg["scale"]
    pipe.initialize(lambda: dev, nlp=nlp, label_texts=DESCRIPTIONS)  # no dev: back to the configured scale
    assert pipe.cfg["scale"] == 20.0 and pipe.cfg["scale_fitted_on"] == 0
