"""layer_decay of the transformer: lower layers of the encoder learn at lower rates, the head
keeps its own, the setting survives saving, and bad values are refused."""

import pytest

try:
    from .transformer_fixtures import RecordingOptimizer, make_trf_nlp, textcat_examples, tiny_bert_dir, tiny_bert_master  # noqa: F401
except ImportError:  # tests/ is not a package
    from transformer_fixtures import RecordingOptimizer, make_trf_nlp, textcat_examples, tiny_bert_dir, tiny_bert_master  # noqa: F401


def recorded_scales(model_dir, layer_decay):
    """The pipeline and the lr_scale the optimizer saw for each torch weight over two updates."""
    import torch
    from thinc.api import fix_random_seed

    torch.set_num_threads(1)
    nlp = make_trf_nlp(model_dir, "trf_textcat", {"learn_rate_scale": 10.0}, layer_decay=layer_decay)
    examples = textcat_examples(nlp)
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    recording = RecordingOptimizer(nlp.create_optimizer())
    # spacy-transformers applies the transformer's gradients from the second update on.
    for _ in range(2):
        nlp.update(examples, sgd=recording, drop=0.0)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    torch_scales = {name: scale for (key, name), scale in recording.scales.items() if key == shim.id}
    head_ids = {node.id for node in nlp.get_pipe("trf_textcat").model.walk()}
    head_scales = {scale for (key, _), scale in recording.scales.items() if key in head_ids}
    return nlp, torch_scales, head_scales


def test_lower_layers_learn_slower(tiny_bert_dir, tmp_path):
    import spacy

    nlp, scales, head_scales = recorded_scales(tiny_bert_dir, 0.5)
    # The tiny BERT has two layers: top 1, the one below 0.5, the embeddings 0.25.
    assert scales["encoder.layer.1.attention.self.query.weight"] == 1.0
    assert scales["encoder.layer.0.output.dense.bias"] == 0.5
    assert scales["embeddings.word_embeddings.weight"] == 0.25
    assert set(scales.values()) == {1.0, 0.5, 0.25}
    assert head_scales == {10.0}  # the head's own scale is independent of the decay
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.config["components"]["transformer"]["model"]["layer_decay"] == 0.5
    assert loaded.get_pipe("transformer").model.layers[0].shims[0].layer_decay == 0.5
    copied = loaded.get_pipe("transformer").model.copy()
    assert copied.layers[0].shims[0].layer_decay == 0.5


def test_no_decay_by_default(tiny_bert_dir):
    _, scales, _ = recorded_scales(tiny_bert_dir, 1.0)
    assert scales and set(scales.values()) == {1.0}


@pytest.mark.parametrize("bad", [0, -0.5, 1.5])
def test_bad_decay_is_refused(tiny_bert_dir, bad):
    with pytest.raises(ValueError, match="layer_decay must be a number in"):
        make_trf_nlp(tiny_bert_dir, "trf_textcat", layer_decay=bad)


@pytest.mark.parametrize("bad", [float("nan"), True, "0.9", None])
def test_check_refuses_what_spacy_configs_let_through_from_python(bad):
    from hybridnlp.components.transformer.encoder import check_layer_decay

    with pytest.raises(ValueError, match="layer_decay must be a number in"):
        check_layer_decay(bad)
