"""Judging models: scoring on a dataset (`evaluate`), complexity and speed (`bench`) and the
shared plotting setup (`plotting`). Metrics themselves live with the models
(`meco_core.models.metrics`). The same-budget comparison, which trains and then judges,
sits above this package and `train`: `meco_core.experiments.compare`. This package never
imports `train` (test/test_structure.py).
"""
