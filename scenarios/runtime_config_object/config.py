from dataclasses import dataclass


@dataclass
class Config:
    alpha: float = 4.0  # surrogate sharpness
    decay: float = 0.9
    n_hidden: int = 6


cfg = Config()
