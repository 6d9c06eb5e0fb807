"""learn_rate_scale of the transformer heads: the head's own weights move faster, the
transformer's keep the base rate, the setting survives saving, and bad values are refused."""

import numpy
import pytest

try:
    from .transformer_fixtures import RecordingOptimizer, make_trf_nlp, ner_examples, textcat_examples, tiny_bert_dir, tiny_bert_master  # noqa: F401
except ImportError:  # tests/ is not a package
    from transformer_fixtures import RecordingOptimizer, make_trf_nlp, ner_examples, textcat_examples, tiny_bert_dir, tiny_bert_master  # noqa: F401

HEADS = [("trf_textcat", textcat_examples), ("trf_ner", ner_examples)]


def head_params(nlp, head):
    model = nlp.get_pipe(head).model
    return numpy.concatenate(
        [model.ops.to_numpy(node.get_param(name)).ravel() for node in model.walk() for name in node.param_names]
    )


def one_step(model_dir, head, make_examples, scale):
    """The pipeline, its head's weights before and after one update at learn rate 1e-3,
    and the lr_scale the optimizer saw for each parameter over two updates."""
    import torch
    from thinc.api import fix_random_seed

    torch.set_num_threads(1)
    nlp = make_trf_nlp(model_dir, head, {"learn_rate_scale": scale})
    examples = make_examples(nlp)
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    before = head_params(nlp, head)
    optimizer = nlp.create_optimizer()
    optimizer.learn_rate = 1e-3
    recording = RecordingOptimizer(optimizer)
    nlp.update(examples, sgd=recording, drop=0.0)
    after = head_params(nlp, head)
    # spacy-transformers applies the transformer's gradients from the second update on.
    nlp.update(examples, sgd=recording, drop=0.0)
    return nlp, before, after, recording.scales


@pytest.mark.parametrize("head,make_examples", HEADS)
def test_scale_speeds_up_the_head_only(tiny_bert_dir, head, make_examples):
    _, h0, h1, _ = one_step(tiny_bert_dir, head, make_examples, 1.0)
    nlp, h0s, h1s, scales = one_step(tiny_bert_dir, head, make_examples, 10.0)
    numpy.testing.assert_array_equal(h0, h0s)  # same start
    # Adam's first step moves each weight by about the learning rate: ten times as far.
    ratio = numpy.abs(h1s - h0s).mean() / numpy.abs(h1 - h0).mean()
    assert 7.0 < ratio < 13.0
    # The head's parameters get the scale; the transformer's (updated by the transformer
    # component through its shim) keep the base rate.
    head_ids = {node.id for node in nlp.get_pipe(head).model.walk()}
    head_scales = {scale for (node_id, _), scale in scales.items() if node_id in head_ids}
    other_scales = {scale for (node_id, _), scale in scales.items() if node_id not in head_ids}
    assert head_scales == {10.0}
    assert other_scales == {1.0}
    # The setting is part of the component's saved cfg.
    restored = make_trf_nlp(tiny_bert_dir, head)
    restored.from_bytes(nlp.to_bytes())
    assert restored.get_pipe(head).cfg["learn_rate_scale"] == 10.0


@pytest.mark.parametrize("head", [head for head, _ in HEADS])
@pytest.mark.parametrize("bad", [0, -1.0])
def test_bad_scale_is_refused(tiny_bert_dir, head, bad):
    with pytest.raises(ValueError, match="learn_rate_scale must be a positive number"):
        make_trf_nlp(tiny_bert_dir, head, {"learn_rate_scale": bad})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "10"])
def test_check_refuses_what_spacy_configs_let_through_from_python(bad):
    # spaCy's config validation already stops these on the factory path; the components'
    # constructors are also called directly.
    from hybridnlp.components.transformer._update import check_learn_rate_scale

    with pytest.raises(ValueError, match="learn_rate_scale must be a positive number"):
        check_learn_rate_scale(bad)
