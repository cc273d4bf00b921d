"""Network building blocks that two or more domains use (DESIGN.md §1).

- activations.py  the course's activation functions by name (--activation), for every model (no torch at import)
- mlp.py          fully connected stacks, run on one CPU thread when small (dltool.core.threads' policy)
- autoencoder.py  the MLP autoencoder of `reduce autoencoder` and `cluster deep`, and its training task
- attention.py    multi-head self-attention (torch's scaled_dot_product_attention) and padding masks
- positional.py   sinusoidal codes: the Transformer's positions and the diffusion U-Net's timesteps
- transformer.py  sinusoidal positional encoding, pre-norm encoder blocks and stacks (text classify)
- causal.py       causal self-attention with a key/value cache and GPT's pre-norm decoder block (text lm)
- dropout.py      dropout whose CPU mask is drawn eight elements a random word (torch's: one Bernoulli each)
- recurrent.py    multi-layer LSTM/GRU as torch's module, with that dropout between the layers (text seq2seq)
- seq2seq.py      encoder-decoder attention: Bahdanau's additive and Luong's, cross-attention and the
                  Transformer's decoder block with a cache (text seq2seq)

Importing this package imports nothing heavy; the submodules import torch.
"""
