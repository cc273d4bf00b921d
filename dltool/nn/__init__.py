"""Network building blocks that two or more domains use (DESIGN.md §1).

- mlp.py          fully connected stacks, and the thread policy for small MLP work on a CPU
- autoencoder.py  the MLP autoencoder of `reduce autoencoder` and `cluster deep`, and its training task

Importing this package imports nothing heavy; the submodules import torch.
"""
