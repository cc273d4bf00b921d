"""Hyperparameter search over any dltool command with Optuna (`dltool tune run|show|ask|tell`)."""
