import surrogate


def load_config(values):
    for key, value in values.items():
        setattr(surrogate, key.upper(), value)
