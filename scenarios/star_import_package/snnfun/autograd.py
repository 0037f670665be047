import torch

from .base import *


class StepLinearGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * triangle(x, 1.0)


class StepScaledGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, width=2.0):
        ctx.save_for_backward(x)
        ctx.width = width
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ALPHA * triangle(x, ctx.width), None
