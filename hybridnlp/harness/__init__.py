"""The comparison harness: ``hybridnlp bench`` and ``hybridnlp select``.

- :mod:`.runner` trains or loads each system and scores them all the same way
  (:func:`run_bench`),
- :mod:`.metrics` turns per-document counts into scores, bootstrap intervals and paired
  tests,
- :mod:`.cost` measures throughput, latency, memory and size,
- :mod:`.report` writes results.json, results.md and the chart,
- :mod:`.selection` picks the most accurate system within a budget.

Nothing is imported here, so ``python -m hybridnlp.harness.serve_probe`` measures a
pipeline's memory without the harness's own.
"""
