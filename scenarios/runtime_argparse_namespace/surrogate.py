import argparse

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--thresh", type=float, default=0.5, help="firing threshold")
parser.add_argument("--lens", type=float, default=0.5, help="width of the rectangular surrogate")
parser.add_argument("--decay", type=float, default=0.2)
args, _ = parser.parse_known_args()


class ActFun(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.gt(args.thresh).float()

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        temp = abs(input - args.thresh) < args.lens
        return grad_input * temp.float() / (2 * args.lens)


act_fun = ActFun.apply


def mem_update(ops, x, mem, spike):
    mem = mem * args.decay * (1.0 - spike) + ops(x)
    spike = act_fun(mem)
    return mem, spike
