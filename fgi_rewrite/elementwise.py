"""What fgi-rewrite knows to be elementwise, random or boolean (the tables the analysis checks)."""

from __future__ import annotations

_MATH_FUNCS = {
    "exp", "log", "sqrt", "sin", "cos", "tan", "atan", "tanh", "erf", "erfc", "pow", "fabs",
    "log1p", "expm1", "floor", "ceil", "isfinite",
}
_UNARY = {
    "abs", "absolute", "acos", "arccos", "acosh", "arccosh", "asin", "arcsin", "asinh", "arcsinh",
    "atan", "arctan", "atanh", "arctanh", "ceil", "cos", "cosh", "deg2rad", "rad2deg", "erf",
    "erfc", "erfinv", "exp", "exp2", "expm1", "floor", "frac", "lgamma", "digamma", "log", "log10",
    "log1p", "log2", "logit", "neg", "negative", "reciprocal", "round", "rsqrt", "sigmoid", "sign",
    "sgn", "signbit", "sin", "sinc", "sinh", "sqrt", "square", "tan", "tanh", "trunc", "fix",
    "relu", "isfinite", "isnan", "isinf", "isposinf", "isneginf", "nan_to_num", "positive",
    "logical_not", "bitwise_not", "conj", "real", "i0", "sigmoid",
}
_BINARY = {
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
    "fmod", "remainder", "pow", "float_power", "atan2", "arctan2", "hypot", "maximum", "minimum",
    "fmax", "fmin", "heaviside", "copysign", "xlogy", "logaddexp", "logaddexp2", "ldexp",
    "gt", "ge", "lt", "le", "eq", "ne", "greater", "greater_equal", "less", "less_equal",
    "not_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
    "bitwise_xor", "clamp", "clip", "clamp_min", "clamp_max", "where", "lerp", "masked_fill",
}
_CONSTRUCTORS = {"zeros_like", "ones_like", "full_like", "tensor", "as_tensor", "scalar_tensor"}
_CASTS = {"float", "double", "half", "bfloat16", "to", "type_as", "type", "detach", "clone",
          "contiguous"}
_FUNCTIONAL = {
    "relu", "sigmoid", "softplus", "hardtanh", "hardsigmoid", "leaky_relu", "elu", "selu",
    "celu", "silu", "gelu", "tanh", "threshold", "relu6", "logsigmoid", "hardswish",
    "softsign", "tanhshrink", "mish", "hardshrink", "softshrink",
}
_SPECIAL = {"expit", "erf", "erfc", "erfinv", "logit", "ndtr", "log_ndtr", "i0", "sinc", "xlogy",
            "exp2", "expm1", "log1p", "round"}

TORCH_FUNCS = (
    {f"torch.{n}" for n in _UNARY | _BINARY | _CONSTRUCTORS}
    | {f"torch.nn.functional.{n}" for n in _FUNCTIONAL}
    | {f"torch.special.{n}" for n in _SPECIAL}
    | {f"math.{n}" for n in _MATH_FUNCS}
)
TENSOR_METHODS = _UNARY | _BINARY | _CASTS | {"new_tensor", "new_full", "new_zeros", "new_ones"}
TENSOR_ATTRIBUTES = {"dtype", "device", "data", "real"}
BUILTINS = {"abs", "float", "int", "pow", "min", "max", "round", "bool"}
REDUCTIONS = {
    "sum", "mean", "prod", "max", "min", "norm", "std", "var", "cumsum", "cumprod", "amax",
    "amin", "logsumexp", "softmax", "log_softmax", "matmul", "mm", "bmm", "mv", "dot",
    "roll", "flip", "view", "reshape", "transpose", "permute", "expand", "repeat", "gather",
    "scatter", "index_select", "sort", "topk", "conv1d", "conv2d", "einsum", "sum_to_size",
    "unsqueeze", "squeeze", "flatten", "cat", "stack", "diff", "t",
}
RANDOM_FUNCS = {
    "torch.rand", "torch.rand_like", "torch.randn", "torch.randn_like", "torch.randint",
    "torch.randint_like", "torch.bernoulli", "torch.normal", "torch.poisson",
    "torch.multinomial", "torch.randperm",
}
RANDOM_METHODS = {"bernoulli", "bernoulli_", "uniform_", "normal_", "exponential_", "random_",
                  "geometric_", "cauchy_", "log_normal_"}
BOOLEAN_FUNCS = {
    "gt", "ge", "lt", "le", "eq", "ne", "greater", "greater_equal", "less", "less_equal",
    "not_equal", "logical_and", "logical_or", "logical_xor", "logical_not", "isfinite", "isnan",
    "isinf", "isposinf", "isneginf", "signbit", "bool",
}
INTEGER_CASTS = {"long", "int", "short", "char", "byte", "bool"}
MATH_CONSTANTS = {"math.pi", "math.e", "math.tau", "math.inf", "math.nan", "torch.pi", "torch.e",
                  "torch.inf", "torch.nan"}
