"""Train a pipeline from a profile or config on a corpus, and save it for ``spacy.load``.

Classical components are fitted in ``nlp.initialize``; when the pipeline has components
trained by gradient steps (transformer heads), spaCy's own training loop runs after that,
keeping the checkpoint with the best dev score, or the weights at the end of training when
the config says ``[hybridnlp] checkpoint = "last"``. Either way the output directory is a plain
spaCy pipeline that loads in a process that never imported hybridnlp.
"""

import functools
import io
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from spacy import util
from spacy.language import Language
from spacy.util import registry

from .corpora import CorpusInfo, resolve_corpus
from .errors import Errors
from .evaluation import read_eval_examples
from .profiles import resolve_profile


# How each category component is switched to multi-label data: factory -> settings.
MULTI_LABEL_SETTINGS = {
    "tfidf_textcat": {"multi_label": True},
    "trf_textcat": {"factory": "trf_textcat_multilabel", "model.exclusive_classes": False},
    "cats_fusion": {"multi_label": True},
    "cascade": {"multi_label": True},
}


def multi_label_overrides(config) -> Dict[str, Any]:
    """Overrides that turn the config's category components to multi-label."""
    overrides = {}
    for name, section in config.get("components", {}).items():
        for key, value in MULTI_LABEL_SETTINGS.get(section.get("factory"), {}).items():
            overrides[f"components.{name}.{key}"] = value
    return overrides


def load_training_config(
    profile: Union[str, Path], corpus: CorpusInfo, overrides: Optional[Dict[str, Any]] = None
):
    """The profile's config for the corpus's task, with the corpus's train/dev paths set
    (and its category components switched to multi-label for multi-label corpora)."""
    config_path = resolve_profile(profile, corpus.task)
    settings = {"paths.train": str(corpus.files["train"])}
    settings["paths.dev"] = str(corpus.files.get("dev", corpus.files["train"]))
    if corpus.multi_label:
        settings.update(multi_label_overrides(util.load_config(config_path, interpolate=False)))
    settings.update(overrides or {})
    return util.load_config(config_path, overrides=settings, interpolate=False)


@registry.callbacks("hybridnlp.init_progress.v1")
def create_init_progress() -> Callable[[Language], Language]:
    """A ``[initialize] before_init`` callback that shows a progress bar while the pipes
    are fitted (classical components do all their training in ``initialize``)."""

    def before_init(nlp: Language) -> Language:
        from tqdm import tqdm

        bar = tqdm(total=len(nlp.pipeline), desc="initialize", unit="pipe")
        for name, proc in nlp.pipeline:
            if hasattr(proc, "initialize"):
                proc.initialize = _reporting(proc.initialize, name, bar)
            else:
                bar.update(1)
        return nlp

    return before_init


def _reporting(initialize: Callable, name: str, bar) -> Callable:
    """Wrap one pipe's bound ``initialize`` so the bar names it and advances after it
    (keeping its signature, which spaCy validates the [initialize] settings against)."""

    @functools.wraps(initialize)
    def wrapped(*args, **kwargs):
        bar.set_postfix_str(name)
        try:
            return initialize(*args, **kwargs)
        finally:
            bar.update(1)
            if bar.n >= bar.total:
                bar.close()

    return wrapped


def dev_score(nlp: Language, info: CorpusInfo) -> float:
    """The weighted dev score spaCy's training loop selects checkpoints by."""
    split = "dev" if "dev" in info.files else "train"
    scores = nlp.evaluate(read_eval_examples(nlp, info, split))
    weights = nlp.config["training"]["score_weights"]
    return sum((scores.get(key) or 0.0) * weight for key, weight in weights.items() if weight)


CHECKPOINTS = ("best", "last")


def checkpoint_choice(config) -> str:
    """Which weights training keeps: the config's ``[hybridnlp] checkpoint``, "best" (the
    default: the checkpoint with the best dev score) or "last" (the end of training). E203
    for anything else."""
    value = (config.get("hybridnlp") or {}).get("checkpoint", "best")
    if value not in CHECKPOINTS:
        raise ValueError(Errors.E203.format(value=value))
    return value


def better_on_dev(last: Language, best: Language, info: CorpusInfo) -> Language:
    """The final model or the best checkpoint, whichever scores higher on dev.

    spaCy's loop only scores every ``eval_frequency`` steps, so the steps after the last
    evaluation (all of them, when ``max_steps`` is below ``eval_frequency``) would otherwise
    be thrown away.
    """
    return last if dev_score(last, info) > dev_score(best, info) else best


def has_gradient_components(nlp: Language) -> bool:
    """Whether any pipe is updated by gradient steps (and so needs the training loop);
    frozen pipes (e.g. the trained parts of the hybrid profile) do not count, nor does a
    transformer that no component listens to (spacy-transformers' ``Transformer.update``
    gets its gradients from its listeners, so without one it learns nothing: the zeroshot
    profile's encoder)."""
    frozen = set(nlp.config["training"].get("frozen_components") or [])
    return any(
        name not in frozen
        and getattr(proc, "is_trainable", False)
        and getattr(proc, "model", None) not in (None, True, False)
        and getattr(proc, "listeners", None) != []
        for name, proc in nlp.pipeline
    )


def train(
    profile: Union[str, Path],
    corpus: Union[str, Path, CorpusInfo],
    output: Union[str, Path],
    *,
    overrides: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
    quiet: bool = False,
) -> Language:
    """Train ``profile`` on ``corpus`` (train split; dev for selection) and save to ``output``.

    Returns the trained pipeline. Training time and provenance go into ``meta.json`` under
    ``"hybridnlp"``.
    """
    info = corpus if isinstance(corpus, CorpusInfo) else resolve_corpus(corpus)
    overrides, part_overrides = split_part_overrides(overrides, part_names(resolve_profile(profile, info.task)))
    config = load_training_config(profile, info, overrides)
    checkpoint_choice(config)  # a bad setting fails before any training
    output = Path(output)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hybridnlp-parts-") as parts_dir:
        parts = train_missing_parts(config, info, Path(parts_dir), gpu_id=gpu_id, quiet=quiet,
                                    overrides=part_overrides)
        nlp = _train_config(config, info, gpu_id=gpu_id, quiet=quiet)
    train_seconds = time.perf_counter() - start
    trained_here = {name for name in parts if config["paths"][name].startswith(parts_dir)}
    # Parts trained before: the pipeline's training time includes theirs.
    train_seconds += sum(parts[name] or 0.0 for name in parts if name not in trained_here)
    # The progress callback is a training aid, not part of the saved pipeline's recipe.
    nlp.config["initialize"]["before_init"] = None
    # nlp.update without an optimizer (nlp.create_optimizer) resolves [training.optimizer]
    # alone, where a reference such as ${training.max_steps} cannot be filled in.
    nlp.config["training"]["optimizer"] = nlp.config.interpolate()["training"]["optimizer"]
    for name in trained_here:  # the temporary directories are gone; the pipeline has them
        nlp.config["paths"][name] = None
    nlp.meta.setdefault("hybridnlp", {}).update(
        {
            "profile": str(profile),
            "corpus": info.name,
            "task": info.task,
            "train_seconds": round(train_seconds, 3),
        }
    )
    if parts:
        nlp.meta["hybridnlp"]["parts_train_seconds"] = parts
    if output.exists():
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    return nlp


def part_names(config_path: Path) -> List[str]:
    """The parts a config is built from: its ``[paths]`` entries named after a shipped
    profile (the hybrid profile's ``fast`` and ``accurate``)."""
    from .profiles import known_profiles

    paths = util.load_config(config_path, interpolate=False).get("paths", {})
    return [name for name in known_profiles() if name in paths]


def split_part_overrides(overrides: Optional[Dict[str, Any]], names: Sequence[str]
                         ) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """Separate the overrides meant for a part of the pipeline (``accurate.training.max_steps``
    goes to the ``accurate`` part as ``training.max_steps``) from the config's own."""
    own: Dict[str, Any] = {}
    parts: Dict[str, Dict[str, Any]] = {}
    for key, value in (overrides or {}).items():
        head, _, rest = key.partition(".")
        if head in names and rest:
            parts.setdefault(head, {})[rest] = value
        else:
            own[key] = value
    return own, parts


def train_missing_parts(config, info: CorpusInfo, workdir: Path, *, gpu_id: int = -1,
                        quiet: bool = False,
                        overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> Dict[str, float]:
    """Train the pipelines a config sources its components from and does not have yet.

    A ``[paths]`` entry named after a shipped profile (``fast``, ``accurate``) and left
    null is trained on the same corpus into ``workdir`` (with ``overrides[name]``) and the
    entry set to it. A part given as a path must be a trained pipeline (E202); one trained
    on another corpus gets a warning. Returns the training seconds of every part (for a
    part given as a path, from its meta.json; None when it has none).
    """
    from .profiles import known_profiles

    seconds = {}
    overrides = overrides or {}
    known = set(known_profiles())
    for name in [n for n in config["paths"] if n in known]:
        if config["paths"][name] is None:
            print(f"Training part '{name}' of the pipeline", file=sys.stderr)
            part = train(name, info, workdir / name, gpu_id=gpu_id, quiet=quiet,
                         overrides=overrides.get(name))
            seconds[name] = part.meta["hybridnlp"]["train_seconds"]
            config["paths"][name] = str(workdir / name)
        else:  # a part trained before: its own training time still counts
            path = Path(config["paths"][name])
            if not (path / "config.cfg").is_file() or not (path / "meta.json").is_file():
                raise ValueError(Errors.E202.format(path=path))
            meta = util.load_meta(path / "meta.json").get("hybridnlp", {})
            if meta.get("corpus") not in (None, info.name):
                warnings.warn(f"The '{name}' part {path} was trained on '{meta.get('corpus')}', "
                              f"not on '{info.name}'.")
            seconds[name] = meta.get("train_seconds")
    return seconds


def _train_config(config, info: CorpusInfo, *, gpu_id: int, quiet: bool) -> Language:
    """Initialize (and, with gradient-trained pipes, train) the pipeline of ``config``."""
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_loop

    if config["initialize"].get("before_init") is None:
        config["initialize"]["before_init"] = {"@callbacks": "hybridnlp.init_progress.v1"}
    if gpu_id >= 0:
        from thinc.api import require_gpu

        require_gpu(gpu_id)
    nlp = init_nlp(config, use_gpu=gpu_id)
    if has_gradient_components(nlp):
        sink = io.StringIO() if quiet else sys.stdout
        keep_best = checkpoint_choice(config) == "best"
        with tempfile.TemporaryDirectory(prefix="hybridnlp-train-") as tmp:
            # Keeping the last weights, the loop saves nothing on the way: its nlp is the result.
            output_path = Path(tmp) if keep_best else None
            nlp, _ = train_loop(nlp, output_path, use_gpu=gpu_id, stdout=sink, stderr=sys.stderr)
            best_dir = Path(tmp) / "model-best"
            if keep_best and best_dir.exists():
                nlp = better_on_dev(nlp, util.load_model(best_dir), info)
    return nlp
