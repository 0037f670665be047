"""Run experiment.ipynb's code cells in order in an IPython shell (magics included), as Jupyter
runs them; the cells record their steps with ``rec``, which this driver puts in their namespace."""

import json
import os
import tempfile

os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp())

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from scenario_record import Recorder  # noqa: E402


def main():
    shell = InteractiveShell.instance()
    rec = Recorder()
    shell.user_ns["rec"] = rec
    with open("experiment.ipynb", encoding="utf-8") as handle:
        notebook = json.load(handle)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            result = shell.run_cell("".join(cell["source"]), silent=True)
            result.raise_error()
    rec.dump()


if __name__ == "__main__":
    main()
