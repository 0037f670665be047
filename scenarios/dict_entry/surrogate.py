import torch

# Surrogate hyperparameters, edited by the training script.
HYPER = {"k": 2.0, "threshold": 1.0}


class SigmoidSurrogate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).type_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        k = HYPER["k"]
        sig = torch.sigmoid(k * x)
        return grad_output * k * sig * (1 - sig)


spike = SigmoidSurrogate.apply
