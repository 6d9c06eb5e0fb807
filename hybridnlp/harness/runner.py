"""Run the comparison: train or load every system on every corpus, score them all on the
same split with the same code path, measure their cost, and write the reports.

A system is a profile name (``fast``, ``accurate``, ...) or a config path, so a new
approach is benchmarked by writing a config, not by changing the harness. Any config path
may contain ``{task}`` (``configs/mine_{task}.cfg``) to pick a config per corpus task, and
may be named as ``NAME=PATH``. Each (corpus, system) run ends as ``ok``, ``skipped`` (no
config for the task, missing optional dependencies, a pipeline that does not predict the
task) or ``failed`` (any other error); neither stops the other runs.
"""

import gc
import re
import shlex
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rich.markup import escape
from spacy.training import Example

from ..errors import Errors
from .metrics import DocCounts, bootstrap_intervals, cats_doc_counts, ner_doc_counts, paired_test, primary_metric

SCHEMA_VERSION = 1
# Keys every run object carries (None where they do not apply or the run did not finish).
RUN_KEYS = (
    "corpus", "task", "system", "config", "status", "reason", "primary_metric", "scores",
    "words_per_second", "docs_per_second", "latency_ms_p50", "latency_ms_p95",
    "peak_rss_mb", "load_rss_mb", "import_rss_mb", "gpu_peak_mb", "gpu_torch_peak_mb", "gpu_cupy_pool_mb",
    "size_mb", "train_seconds", "p_value_vs_best", "best_system", "same_as_best", "model_path", "trained",
    "pipeline", "n_docs", "n_words", "eval_seconds", "throughput_seconds", "throughput_docs",
    "throughput_words", "latency_docs", "routed", "warnings",
)
# Quality names per task, as ``hybridnlp evaluate`` reports them.
QUALITY_NAMES = {
    "textcat": ("accuracy", "cats_macro_f", "cats_micro_f"),
    "ner": ("ents_p", "ents_r", "ents_f"),
}


@dataclass
class BenchSettings:
    """How the benchmark measures; recorded in results.json as ``settings``.

    ``batch_size`` is used for scoring, throughput and the memory probe; ``speed_docs`` and
    ``latency_docs`` cap the evenly spread samples timed for throughput (``rounds`` passes,
    median) and latency (batch size 1); ``limit`` keeps the first N documents of the split
    (0 = all); ``n_resamples`` serves both the bootstrap and the paired test; a system is
    "not significantly different" from the best when its p-value is at least ``alpha``.
    """

    split: str = "test"
    batch_size: int = 128
    threads: int = 1
    n_resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    alpha: float = 0.05
    rounds: int = 3
    speed_docs: int = 1000
    latency_docs: int = 100
    limit: int = 0
    gpu_id: int = -1
    measure_memory: bool = True
    verbose: bool = False
    # spaCy config overrides applied to every system trained in this run, e.g.
    # {"training.max_steps": 150} for a small CPU budget.
    overrides: Dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError (E608) for settings that cannot work."""
        checks = [
            ("batch_size", self.batch_size >= 1, "use a batch size of at least 1"),
            ("threads", self.threads >= 1, "use at least one thread"),
            ("n_resamples", self.n_resamples >= 0, "use 0 (no intervals, no tests) or more resamples"),
            ("confidence", 0 < self.confidence < 1, "use a level between 0 and 1, e.g. 0.95"),
            ("alpha", 0 < self.alpha < 1, "use a significance level between 0 and 1, e.g. 0.05"),
            ("rounds", self.rounds >= 1, "time at least one round"),
            ("speed_docs", self.speed_docs >= 1, "time at least one document"),
            ("latency_docs", self.latency_docs >= 1, "time at least one document"),
            ("limit", self.limit >= 0, "use 0 (all documents) or a positive number"),
        ]
        for name, ok, hint in checks:
            if not ok:
                raise ValueError(Errors.E608.format(name=name, value=getattr(self, name), hint=hint))


@dataclass
class SystemSpec:
    """A system to compare: its name (used in tables and model folders) and its profile
    name or config path (which may contain ``{task}``)."""

    name: str
    profile: str

    def for_task(self, task: str) -> str:
        return self.profile.replace("{task}", task)


def parse_systems(specs: Sequence[str]) -> List[SystemSpec]:
    """``["fast", "mine=path/a_{task}.cfg", "path/b.cfg"]`` -> named systems. A path's name
    is its file stem without a ``_{task}`` part. Raises ValueError (E601) on duplicates."""
    systems: List[SystemSpec] = []
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        if "=" in spec and not Path(spec).exists():
            name, profile = (part.strip() for part in spec.split("=", 1))
        elif spec.endswith(".cfg") or "/" in spec or "{task}" in spec:
            profile = spec
            name = re.sub(r"[_-]?\{task\}", "", Path(spec).stem) or Path(spec).stem
        else:
            name = profile = spec
        systems.append(SystemSpec(safe_name(name), profile))
    seen: Dict[str, str] = {}
    for system in systems:
        if system.name in seen:
            raise ValueError(Errors.E601.format(name=system.name, specs=f"{seen[system.name]}, {system.profile}"))
        seen[system.name] = system.profile
    return systems


def safe_name(name: str) -> str:
    """A name usable as a folder name."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip("-.") or "system"


def empty_run(corpus: str, task: Optional[str], system: SystemSpec) -> Dict:
    run = {key: None for key in RUN_KEYS}
    run.update(corpus=corpus, task=task, system=system.name, config=system.profile, warnings=[])
    return run


# A prompted system whose language model is not given, not there or not reachable.
LANGUAGE_MODEL_MISSING = ("[E540]", "[E541]", "[E542]")


def unavailable_reason(exc: BaseException) -> Optional[str]:
    """The reason to report a system as skipped rather than failed: missing packages,
    unknown factories or architectures (an optional part not installed), a language model
    that is not there. None otherwise."""
    text = str(exc)
    if isinstance(exc, ImportError):
        return f"missing dependency ({exc.__class__.__name__}: {text})"
    # spaCy: E002 "Can't find factory"; catalogue: a registered function that does not exist.
    if "[E002]" in text or exc.__class__.__name__ == "RegistryError":
        return text.splitlines()[0]
    if any(code in text for code in LANGUAGE_MODEL_MISSING):
        return text.splitlines()[0]
    return None


def classify_error(exc: BaseException, system: str) -> Tuple[str, str]:
    """("skipped" | "failed", reason) for an exception raised while training or loading."""
    reason = unavailable_reason(exc)
    if reason is not None:
        if any(code in reason for code in LANGUAGE_MODEL_MISSING):
            hint = "Give the language model with --paths.lm (a model directory or a server URL), or leave it out of --systems."
        else:
            hint = "Install what it needs (e.g. pip install 'hybridnlp[transformers]') or leave it out of --systems."
        problem = reason.rstrip(". ") + "."
        return "skipped", Errors.E604.format(system=system, problem=problem, hint=hint)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return "failed", f"{exc.__class__.__name__}: {first}"


def pipeline_cats_settings(nlp, multi_label: bool) -> Tuple[Optional[List[str]], Optional[float], bool]:
    """(labels, threshold, multi_label) with which the pipeline's category scorer counts:
    from the last component that has a ``threshold`` setting (spaCy's textcats and
    hybridnlp's keep it in ``cfg``); the corpus's kind and spaCy's defaults otherwise."""
    labels, threshold = None, None
    for name, proc in nlp.pipeline:
        cfg = getattr(proc, "cfg", None)
        if isinstance(cfg, dict) and "threshold" in cfg:
            threshold = cfg["threshold"]
            labels = list(getattr(proc, "labels", []) or []) or None
            factory = nlp.get_pipe_meta(name).factory
            if "multi_label" in cfg:
                multi_label = bool(cfg["multi_label"])
            elif factory in ("textcat", "textcat_multilabel"):
                multi_label = factory == "textcat_multilabel"
    return labels, threshold, multi_label


def quality(
    nlp, info, examples: Sequence[Example], docs, point: Dict, settings: BenchSettings, system: str
) -> Tuple[Dict, DocCounts, List[str]]:
    """Scores with intervals, the per-document counts, and warnings.

    Values are the Scorer's (hybridnlp.evaluation.score_docs, the single scoring path);
    intervals come from the per-document counts, which are checked to reproduce them.
    """
    scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
    if info.task == "ner":
        counts = ner_doc_counts(scored)
    else:
        labels, threshold, multi_label = pipeline_cats_settings(nlp, info.multi_label)
        counts = cats_doc_counts(scored, multi_label=multi_label, labels=labels, threshold=threshold)
    intervals = bootstrap_intervals(counts, settings.n_resamples, settings.seed, settings.confidence)
    warnings: List[str] = []
    mismatched = []
    scores: Dict = {}
    for name in QUALITY_NAMES[info.task]:
        if name not in point:
            continue
        interval = dict(intervals.get(name, {"low": None, "high": None}))
        if name in intervals and abs(interval["value"] - point[name]) > 1e-9:
            mismatched.append(f"{name}: {interval['value']:.6f} vs {point[name]:.6f}")
        interval["value"] = point[name]
        scores[name] = interval
    if info.task == "ner" and point.get("ents_per_type"):
        per_type = {}
        for label, prf in sorted(point["ents_per_type"].items()):
            per_type[label] = {}
            for key in ("p", "r", "f"):
                interval = dict(intervals.get(("ents_per_type", label, key), {"low": None, "high": None}))
                if interval.get("value") is not None and abs(interval["value"] - prf[key]) > 1e-9:
                    mismatched.append(f"ents_per_type[{label}].{key}")
                interval["value"] = prf[key]
                per_type[label][key] = interval
        scores["ents_per_type"] = per_type
    if mismatched:
        warnings.append(Errors.E605.format(system=system, corpus=info.name, details="; ".join(mismatched[:5])))
    return scores, counts, warnings


TASK_OUTPUTS = {"ner": ("doc.ents", "token.ent_iob", "token.ent_type"), "textcat": ("doc.cats",)}


def declared_outputs(config_path: Path) -> Optional[set]:
    """What a config's components declare they write (``assigns`` of their factories),
    read without building any model; None when it cannot be told (a sourced component,
    an unknown factory: training then reports the real problem)."""
    import spacy
    from spacy import util

    config = util.load_config(config_path, interpolate=False)
    # A blank pipeline registers the built-in and entry-point factories and their meta.
    nlp = spacy.blank(config.get("nlp", {}).get("lang") or "en")
    assigns: set = set()
    for name in config.get("nlp", {}).get("pipeline", []):
        factory = config.get("components", {}).get(name, {}).get("factory")
        if factory is None or not nlp.has_factory(factory):
            return None
        assigns.update(nlp.get_factory_meta(factory).assigns)
    return assigns


def predicts_other_task(config_path: Path, task: str) -> bool:
    """Whether a config clearly serves the other task: its components declare the other
    task's outputs and none of this one's. Conservative, so an undeclared output never
    causes a skip."""
    assigns = declared_outputs(config_path)
    if not assigns:
        return False
    other = "textcat" if task == "ner" else "ner"
    return (not any(a in assigns for a in TASK_OUTPUTS[task])
            and any(a in assigns for a in TASK_OUTPUTS[other]))


def find_trained(models: Optional[Path], corpus: str, system: str) -> Optional[Path]:
    """The pipeline directory MODELS/CORPUS/SYSTEM if it holds a trained pipeline."""
    if models is None:
        return None
    path = models / corpus / system
    return path if (path / "config.cfg").exists() and (path / "meta.json").exists() else None


class Bench:
    """One benchmark run: holds the settings, the growing results, and writes the reports.

    Use :func:`run_bench`; the class only keeps the steps apart.
    """

    def __init__(self, corpora: Sequence[str], systems: Sequence[SystemSpec], output: Path, *,
                 models: Optional[Path], settings: BenchSettings, command: Optional[str], console):
        from .environment import hardware, versions

        self.corpora = list(corpora)
        self.systems = list(systems)
        self.output = Path(output)
        self.models = Path(models) if models is not None else None
        self.settings = settings
        self.console = console
        self.results: Dict = {
            "schema_version": SCHEMA_VERSION,
            "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            "command": command if command is not None else " ".join(shlex.quote(a) for a in sys.argv),
            "settings": {**asdict(settings), "paired_test": "approximate randomisation over documents",
                         "interval": "percentile bootstrap over documents",
                         "peak_rss": "high-water RSS (VmHWM) of a fresh process that loads and runs the pipeline"},
            "versions": versions(),
            "hardware": hardware(),
            "corpora": [],
            "runs": [],
        }

    def say(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message)

    def run(self) -> Dict:
        from .cost import fix_threads
        from .report import write_reports

        self.output.mkdir(parents=True, exist_ok=True)
        if self.settings.gpu_id >= 0:
            import spacy

            spacy.require_gpu(self.settings.gpu_id)
        with fix_threads(self.settings.threads):
            for corpus in self.corpora:
                self.run_corpus(corpus)
        write_reports(self.results, self.output, console=self.console)
        return self.results

    def run_corpus(self, corpus_name: str) -> None:
        from ..corpora import resolve_corpus

        try:
            info = resolve_corpus(corpus_name)
        except Exception as exc:  # an unreadable corpus skips its systems, not the run
            self.skip_corpus(corpus_name, None, str(exc).strip().splitlines()[0])
            return
        if self.settings.split not in info.files:
            # Checked before training: every system would be trained only to fail here.
            reason = Errors.E004.format(path=info.path, split=self.settings.split,
                                        available=", ".join(info.files) or "none")
            self.skip_corpus(info.name, info.task, reason)
            return
        metric = primary_metric(info.task, info.multi_label)
        record = {"name": info.name, "path": str(info.path), "task": info.task,
                  "multi_label": info.multi_label, "split": self.settings.split,
                  "primary_metric": metric, "labels": list(info.labels), "n_docs": None, "n_words": None}
        self.results["corpora"].append(record)
        counts: Dict[str, DocCounts] = {}
        runs: List[Dict] = []
        for system in self.systems:
            run = empty_run(info.name, info.task, system)
            run["primary_metric"] = metric
            runs.append(run)
            self.results["runs"].append(run)
            started = time.perf_counter()
            try:
                doc_counts = self.run_system(info, system, run, record)
            except Exception as exc:  # one system's failure is reported, the rest still run
                status, reason = classify_error(exc, system.name)
                run.update(status=status, reason=reason)
                if status == "failed" and self.settings.verbose:
                    traceback.print_exc()
                doc_counts = None
            if doc_counts is not None:
                counts[system.name] = doc_counts
                run["status"] = "ok"
            colour = {"ok": "green", "skipped": "yellow"}.get(run["status"], "red")
            self.say(f"[{colour}]{run['status']}[/] {escape(info.name)}/{escape(system.name)} "
                     f"({time.perf_counter() - started:.1f} s)" + (f": {escape(run['reason'])}" if run["reason"] else ""))
            self.save()
        self.compare_with_best(info, metric, runs, counts)
        self.save()

    def skip_corpus(self, corpus_name: str, task: Optional[str], reason: str) -> None:
        """Record every system as skipped on a corpus that cannot be benchmarked."""
        self.say(f"[yellow]Skipping corpus {escape(corpus_name)}[/]: {escape(reason)}")
        for system in self.systems:
            run = empty_run(corpus_name, task, system)
            run.update(status="skipped", reason=reason)
            self.results["runs"].append(run)
        self.save()

    def run_system(self, info, system: SystemSpec, run: Dict, record: Dict) -> Optional[DocCounts]:
        """Train or load one system, score it and measure it; fills ``run``. Returns its
        per-document counts, or None when it is skipped (``run`` then says why)."""
        import spacy

        from ..evaluation import pipeline_inputs, read_eval_examples, run_pipeline, score_docs, trained_n_sents
        from ..profiles import resolve_profile
        from ..training import train
        from .cost import measure_latency, measure_throughput, sample_evenly, serving_memory, size_on_disk_mb

        settings = self.settings
        profile = system.for_task(info.task)
        what = "entities (doc.ents)" if info.task == "ner" else "categories (doc.cats)"
        model_path = find_trained(self.models, info.name, system.name)
        try:
            run["config"] = str(resolve_profile(profile, info.task))
        except (ValueError, FileNotFoundError) as exc:
            # A pipeline already in --models is benchmarked even without a config here.
            if model_path is None:
                run.update(status="skipped", reason=str(exc))
                return None
            run["config"] = str(model_path / "config.cfg")
        if model_path is None and predicts_other_task(Path(run["config"]), info.task):
            # Checked before training, which would fail or produce a pipeline with no scores.
            run.update(status="skipped", reason=Errors.E603.format(
                system=system.name, task=info.task, corpus=info.name, what=what,
                where=f"the components of {run['config']} declare no such output"))
            return None
        run["trained"] = model_path is None
        if model_path is None:
            model_path = self.output / "models" / info.name / system.name
            self.say(f"Training [bold]{escape(system.name)}[/] on [bold]{escape(info.name)}[/] ({info.task}) "
                     f"-> {escape(str(model_path))}")
            overrides = dict(settings.overrides or {})
            overrides.update(self.trained_parts(info.name, Path(run["config"]), info.task))
            train(profile, info, model_path, overrides=overrides, gpu_id=settings.gpu_id,
                  quiet=not settings.verbose)
        else:
            self.say(f"Reusing [bold]{escape(str(model_path))}[/]")
        run["model_path"] = str(model_path)
        nlp = spacy.load(model_path)
        run["pipeline"] = list(nlp.pipe_names)
        meta = nlp.meta.get("hybridnlp", {})
        if not run["trained"] and meta.get("corpus") not in (None, info.name):
            run["warnings"].append(f"{model_path} was trained on '{meta.get('corpus')}', not on '{info.name}'.")
        run["train_seconds"] = meta.get("train_seconds")
        run["size_mb"] = size_on_disk_mb(model_path)

        n_sents = trained_n_sents(nlp)
        examples = read_eval_examples(nlp, info, settings.split, n_sents)
        if info.task == "ner":
            run["n_sents"] = n_sents
        if settings.limit:
            examples = examples[: settings.limit]
        docs, seconds = run_pipeline(nlp, examples, batch_size=settings.batch_size,
                                     progress=f"{info.name}/{system.name}")
        point = score_docs(nlp, examples, docs)
        needed = "ents_f" if info.task == "ner" else "cats_macro_f"
        if needed not in point:
            run.update(status="skipped", reason=Errors.E603.format(
                system=system.name, task=info.task, corpus=info.name, what=what,
                where=f"pipeline {run['pipeline']}"))
            return None
        scores, counts, warnings = quality(nlp, info, examples, docs, point, settings, system.name)
        run["scores"] = scores
        if point.get("cascade_routed") is not None:  # share of docs a cascade sent on
            run["routed"] = point["cascade_routed"]
        run["warnings"].extend(warnings)
        run["n_docs"] = len(docs)
        run["n_words"] = sum(len(doc) for doc in docs)
        run["eval_seconds"] = seconds
        record["n_docs"], record["n_words"] = run["n_docs"], run["n_words"]
        for warning in warnings:
            self.say(f"[yellow]{escape(warning)}[/]")

        inputs = pipeline_inputs(examples)
        speed_inputs = sample_evenly(inputs, settings.speed_docs)
        run.update(measure_throughput(nlp, speed_inputs, batch_size=settings.batch_size,
                                      rounds=settings.rounds, threads=settings.threads))
        run.update(measure_latency(nlp, sample_evenly(inputs, settings.latency_docs), threads=settings.threads))
        del nlp, docs
        gc.collect()
        if settings.measure_memory:
            try:
                memory = serving_memory(model_path, speed_inputs, batch_size=settings.batch_size,
                                        threads=settings.threads, gpu_id=settings.gpu_id)
                for key in ("peak_rss_mb", "load_rss_mb", "import_rss_mb", "gpu_peak_mb", "gpu_torch_peak_mb",
                            "gpu_cupy_pool_mb"):
                    run[key] = memory.get(key)
            except Exception as exc:  # memory is one measurement among many; keep the rest
                run["warnings"].append(str(exc))
                self.say(f"[yellow]{escape(str(exc))}[/]")
        return counts

    def trained_parts(self, corpus: str, config_path: Path, task: str, prefix: str = "") -> Dict[str, str]:
        """``paths.NAME`` overrides for the parts a config sources (the hybrid profile's
        ``fast`` and ``accurate``, the cascade's ``hybrid``) that this run or ``--models``
        already has for the corpus, so they are not trained twice. A part it lacks gets
        the same for its own parts (``hybrid.paths.fast``)."""
        from spacy import util

        from ..profiles import resolve_profile
        from ..training import part_names

        paths = util.load_config(config_path, interpolate=False).get("paths", {})
        found = {}
        for name in part_names(config_path):
            if paths[name] is not None:
                continue
            for models in (self.output / "models", self.models):
                path = find_trained(models, corpus, name)
                # Only a pipeline of that very profile (a system may be named "fast"
                # and be some other config).
                if path is not None and util.load_meta(path / "meta.json").get(
                        "hybridnlp", {}).get("profile") == name:
                    found[f"{prefix}paths.{name}"] = str(path)
                    break
            else:
                found.update(self.trained_parts(corpus, resolve_profile(name, task), task, f"{prefix}{name}."))
        return found

    def compare_with_best(self, info, metric: str, runs: List[Dict], counts: Dict[str, DocCounts]) -> None:
        """Mark the best system on the corpus and test every other one against it."""
        scored = [r for r in runs if r["status"] == "ok" and metric in (r["scores"] or {})]
        if not scored:
            return
        best = max(scored, key=lambda r: (r["scores"][metric]["value"], r["words_per_second"] or 0.0))
        for run in scored:
            run["best_system"] = best["system"]
            if run is best:
                run["same_as_best"] = True
                continue
            if self.settings.n_resamples <= 0:
                continue
            a, b = counts[best["system"]], counts[run["system"]]
            if a.n_docs != b.n_docs:
                run["warnings"].append(Errors.E612.format(system=run["system"], corpus=info.name,
                                                          n_a=b.n_docs, n_b=a.n_docs))
                continue
            p = paired_test(a, b, metric, self.settings.n_resamples, self.settings.seed)
            run["p_value_vs_best"] = p
            run["same_as_best"] = bool(p >= self.settings.alpha)

    def save(self) -> None:
        """Write results.json now, so a run cut short keeps what it measured."""
        from .report import write_json

        write_json(self.results, self.output / "results.json")


def run_bench(
    corpora: Sequence[str],
    systems: Sequence[str],
    output,
    *,
    models=None,
    settings: Optional[BenchSettings] = None,
    command: Optional[str] = None,
    console=None,
) -> Dict:
    """Benchmark ``systems`` (profile names or config paths) on ``corpora`` (names or
    paths) and write ``output/results.json``, ``results.md`` and ``quality_vs_speed.png``.

    Models are trained into ``output/models/CORPUS/SYSTEM`` unless ``models`` already holds
    ``MODELS/CORPUS/SYSTEM``. Returns the results (the content of results.json).
    """
    settings = settings or BenchSettings()
    settings.validate()
    corpora = [c.strip() for c in corpora if c and c.strip()]
    specs = parse_systems(systems)
    if not corpora or not specs:
        raise ValueError(Errors.E600)
    if models is not None and not Path(models).is_dir():
        raise ValueError(Errors.E602.format(path=models))
    bench = Bench(corpora, specs, Path(output), models=models, settings=settings, command=command, console=console)
    return bench.run()
