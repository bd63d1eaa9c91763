"""Hyperparameter search without Ray: ``space`` (what a job may search, a leaf the config
validates with) and ``search`` (the walk-forward objective, the trial table, the best params).
``orchestration/tune.py`` runs them on Ray Tune."""
