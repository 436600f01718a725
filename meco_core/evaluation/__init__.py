"""Judging models: scoring on a dataset (`evaluate`), complexity and speed (`bench`), the
same-budget comparison of several models (`compare`), and the shared plotting setup
(`plotting`). Metrics themselves live with the models (`meco_core.models.metrics`).
"""
