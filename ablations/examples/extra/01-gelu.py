"""A smooth ReLU: GELU in the hidden layers, a(x) = x * Phi(x) (Hendrycks & Gimpel 2016).

ReLU's units that never fire stop learning; GELU keeps a small gradient below zero."""

import torch.nn.functional as F


def activation(a):
    return F.gelu(a)
