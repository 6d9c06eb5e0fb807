"""Gradient updates of a head's own weights at a scaled learning rate."""

from thinc.api import Model, Optimizer

from ...errors import Errors


def finish_update_scaled(model: Model, optimizer: Optimizer, learn_rate_scale: float) -> None:
    """``model.finish_update(optimizer)`` with the learning rate multiplied by
    ``learn_rate_scale`` for every parameter of ``model``.

    A head's output layer starts from random weights while the transformer under it is
    pretrained; a higher rate for the head (the transformer component updates its own
    weights at the base rate) lets the head catch up within a short CPU budget.
    """
    if learn_rate_scale == 1.0:
        model.finish_update(optimizer)
        return
    for node in model.walk():
        for shim in node.shims:
            shim.finish_update(optimizer)
    for node in model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                param, _ = optimizer(
                    (node.id, name), node.get_param(name), node.get_grad(name), lr_scale=learn_rate_scale
                )
                node.set_param(name, param)


def check_learn_rate_scale(value: float) -> float:
    """``value`` as a float if it is a positive finite number, else E508."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(Errors.E508.format(value=value))
    return float(value)
