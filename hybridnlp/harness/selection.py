"""Pick a deployment from benchmark results: the most accurate system within a budget."""

from dataclasses import dataclass
from typing import Dict, List, Optional

from ..errors import Errors
from .report import run_quality, runs_by_corpus

LATENCY_KEYS = {50: "latency_ms_p50", 95: "latency_ms_p95"}


@dataclass
class Choice:
    """The answer for one corpus: the chosen run (None when nothing fits), the metric it
    was ranked by, and a message for the user."""

    corpus: str
    run: Optional[Dict]
    metric: Optional[str]
    message: str


def describe_budget(max_latency_ms: Optional[float], min_words_per_second: Optional[float], percentile: int) -> str:
    parts = []
    if max_latency_ms is not None:
        parts.append(f"p{percentile} latency <= {max_latency_ms:g} ms")
    if min_words_per_second is not None:
        parts.append(f">= {min_words_per_second:,.0f} words/s")
    return " and ".join(parts) or "no budget"


def fits(run: Dict, max_latency_ms: Optional[float], min_words_per_second: Optional[float], percentile: int) -> bool:
    """Whether a finished run meets the budget; a run lacking a measurement does not."""
    if max_latency_ms is not None:
        latency = run.get(LATENCY_KEYS[percentile])
        if latency is None or latency > max_latency_ms:
            return False
    if min_words_per_second is not None:
        speed = run.get("words_per_second")
        if speed is None or speed < min_words_per_second:
            return False
    return True


def select_systems(
    results: Dict,
    *,
    max_latency_ms: Optional[float] = None,
    min_words_per_second: Optional[float] = None,
    corpus: Optional[str] = None,
    latency_percentile: int = 95,
) -> List[Choice]:
    """For each corpus in ``results`` (or only ``corpus``), the finished run with the best
    main metric among those within the budget (ties go to the faster one).

    Raises ValueError: E607 for a corpus not in the results, E608 for a bad percentile.
    """
    if latency_percentile not in LATENCY_KEYS:
        raise ValueError(Errors.E608.format(name="latency_percentile", value=latency_percentile,
                                            hint="use 50 or 95"))
    grouped = runs_by_corpus(results)
    if corpus is not None:
        names = [name for name, _ in grouped]
        if corpus not in names:
            raise ValueError(Errors.E607.format(corpus=corpus, path="the results", known=", ".join(map(str, names))))
        grouped = [(name, runs) for name, runs in grouped if name == corpus]
    budget = describe_budget(max_latency_ms, min_words_per_second, latency_percentile)
    choices = []
    for name, runs in grouped:
        done = [r for r in runs if r.get("status", "ok") == "ok" and run_quality(r) is not None]
        metric = done[0].get("primary_metric") if done else None
        fitting = [r for r in done if fits(r, max_latency_ms, min_words_per_second, latency_percentile)]
        if fitting:
            best = max(fitting, key=lambda r: (run_quality(r), r.get("words_per_second") or 0.0))
            choices.append(Choice(name, best, metric, f"{best['system']} fits {budget}"))
            continue
        if not done:
            closest = "no finished system"
        elif max_latency_ms is not None:
            key = LATENCY_KEYS[latency_percentile]
            near = min(done, key=lambda r: r.get(key) if r.get(key) is not None else float("inf"))
            closest = f"{near['system']} at p{latency_percentile} {near.get(key) or float('nan'):.2f} ms"
        else:
            near = max(done, key=lambda r: r.get("words_per_second") or 0.0)
            closest = f"{near['system']} at {near.get('words_per_second') or 0:,.0f} words/s"
        choices.append(Choice(name, None, metric, Errors.E609.format(corpus=name, budget=budget, closest=closest)))
    return choices
