"""Experiment configuration: hyperparameters of the surrogate are set from keyword arguments."""

from surrogate import SuperSpike


def configure_surrogate(**kwargs):
    for name, value in kwargs.items():
        if not hasattr(SuperSpike, name):
            raise KeyError(name)
        setattr(SuperSpike, name, value)
