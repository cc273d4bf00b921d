"""Clustering: the methods behind `dltool cluster <method>`, metrics, choosing k, plots.

- `config`: the commands' frozen configs (plain dataclasses; the CLI reads its defaults there).
- `methods.METHODS`: the registry of clustering methods (scikit-learn-shaped estimators).
- `clustering.cluster_table`: table -> features -> fit -> table with a `cluster` column.
- `metrics.evaluate_table`: internal and external clustering metrics (`dltool cluster evaluate`).
- `choose_k.choose_k_table`: elbow and silhouette choice of k (`dltool cluster choose-k`).
- `deep.cluster_table`: deep embedded clustering on the shared engine (`dltool cluster deep`).
- `plots`: scatter, dendrogram and choose-k plots.

Nothing heavy is imported here: import the submodule you need.
"""
