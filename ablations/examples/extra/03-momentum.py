"""SGD with momentum 0.9 from torch.optim. The rung sets lr = 0.003, so the step in a steady direction,
lr / (1 - momentum), is the baseline's 0.03."""

import torch

MOMENTUM = 0.9


def optimizer(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM)
