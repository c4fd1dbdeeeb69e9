"""The ML-run world model: a language-model-based predictor of training runs' outcome and cost.

See ``docs/mlrun.md``; the world model is :class:`surrogates.mlrun.model.MLRunWorldModel`.
"""
