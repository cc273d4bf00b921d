"""Dimensionality reduction and feature selection (`dltool reduce ...`).

- config.py     the commands' frozen configs (plain dataclasses; the CLI reads its defaults there)
- base.py       the reducer contract and the registry of methods (REDUCERS)
- pca.py, kpca.py, ica.py, manifold.py (mds, tsne), tsne.py (tsne_embed), autoencoder.py
- reduction.py  reduce_table / transform_table: table in -> reduced table out, model files
- select.py     feature selection: filters, wrappers, embedded and hybrid methods
- plots.py      scatter and explained-variance plots
"""
