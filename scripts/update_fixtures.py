"""Regenerate fixtures/<case>/expected*.{py,ipynb,txt} from the current tool. Review the diff
after!"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fixture_cases import (  # noqa: E402
    EXPECTED_DIR,
    EXPECTED_FILES,
    EXPECTED_REPORT,
    SOURCE_PATTERNS,
    cases,
    copy_inputs,
    report_lines,
    run_case,
)


def main() -> None:
    for case in cases():
        with tempfile.TemporaryDirectory() as temp:
            root = copy_inputs(case, Path(temp))
            report = run_case(root)
            if report.internal_errors:
                print(f"{case.name}: INTERNAL ERROR, expected files kept: {report.internal_errors}")
                continue
            for expected in EXPECTED_FILES.values():
                (case.directory / expected).unlink(missing_ok=True)
            for pattern in SOURCE_PATTERNS:
                for old in (case.directory / EXPECTED_DIR).rglob(pattern):
                    old.unlink()
            for relative in case.input_files():
                before = (case.directory / relative).read_bytes()
                after = (root / relative).read_bytes()
                if before == after:
                    continue
                target = case.expected_path(relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(after)
            lines = report_lines(report, root)
            report_file = case.directory / EXPECTED_REPORT
            if lines:
                report_file.write_text("\n".join(lines) + "\n")
            else:
                report_file.unlink(missing_ok=True)
            print(
                f"{case.name}: {'rewritten' if case.rewritten else 'unchanged'}, "
                f"{len(lines)} diagnostics"
            )


if __name__ == "__main__":
    main()
