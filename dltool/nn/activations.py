"""The course's activation functions by name (--activation), for every model built here (CNNs, MLPs, autoencoders)."""

from __future__ import annotations

from dltool.core.errors import unknown_name


def activation(name: str):
    import torch.nn as nn

    table = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "prelu": nn.PReLU, "elu": nn.ELU,
             "selu": nn.SELU, "gelu": nn.GELU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
             "softplus": nn.Softplus, "softsign": nn.Softsign}
    if name not in table:
        raise unknown_name("activation", name, table)
    return table[name]()


ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "sigmoid", "tanh", "softplus",
               "softsign")
