"""Dimensionality reduction and feature selection (`dltool reduce ...`).

- base.py      the reducer contract and the registry of methods (REDUCERS)
- pca.py, kpca.py, ica.py, manifold.py (mds, tsne), tsne.py (tsne_embed)
- api.py       table in -> reduced table out, model files, transform of new rows
- select.py    feature selection: filters, wrappers, embedded and hybrid methods
- plots.py     scatter and explained-variance plots (matplotlib Agg, atomic writes)
"""
