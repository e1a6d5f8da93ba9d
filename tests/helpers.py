"""Shared helpers: a trained-looking float model and a random discrete assignment of a net."""
import torch
from torch import nn


def trained_like(model):
    """Give BatchNorm non-trivial statistics and affine parameters, as after training."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def random_assignment(net, seed):
    """Logits that make softmax exactly one-hot on random precisions, with a live channel in every group."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for g, alpha in net.logits.items():
            choice = torch.randint(0, alpha.shape[0], (alpha.shape[1],), generator=gen)
            if net.groups[g].zero_index is not None:
                choice[0] = alpha.shape[0] - 1
            alpha.copy_(1000.0 * torch.nn.functional.one_hot(choice, alpha.shape[0]).T)
        for alpha in net.act_logits.values():
            alpha.copy_(1000.0 * torch.nn.functional.one_hot(torch.randint(0, len(alpha), (), generator=gen),
                                                            len(alpha)))
