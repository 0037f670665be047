"""fgi-rewrite: rewrite surrogate-gradient autograd.Functions into forward gradient injection code.

The Python API: ``run(paths, Options(...))`` returns a ``Report`` (``report.exit_code()``,
``report.changed``, ``report.diagnostics``...). See docs/architecture.md for the stages.
"""

__version__ = "0.1.0"

from fgi_rewrite.pipeline.options import Options  # noqa: E402 - after __version__, which it uses
from fgi_rewrite.pipeline.report import Report  # noqa: E402
from fgi_rewrite.pipeline.run import run  # noqa: E402

__all__ = ["Options", "Report", "__version__", "run"]
