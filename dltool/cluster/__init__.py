"""Clustering: the methods behind `dltool cluster <method>`, metrics, choosing k, plots.

- `methods.METHODS`: the registry of clustering methods (scikit-learn-shaped estimators).
- `run`: table -> features -> fit -> table with a `cluster` column (what the commands call).
- `metrics`: internal and external clustering metrics (`dltool cluster evaluate`).
- `choose_k`: elbow and silhouette choice of k (`dltool cluster choose-k`).
- `plots`: scatter, dendrogram and choose-k plots (Agg, written atomically).

Nothing heavy is imported here: import the submodule you need.
"""
