"""Write the last CI run's figures into README.md's marked block.

    python3 scripts/update_readme_counts.py [--summary .ci/tmp/last-summary.txt] [--readme README.md]

`.ci/run` records each run's closing pytest line in .ci/tmp/last-summary.txt (``suite: 646 passed,
35 skipped in 885.20s (0:14:45)``, ``compatibility: ...``, ``croniter-low: ...`` with
``croniter-low-version: 1.3.8``, ``croniter-high: ...``, ``started: ...``, ``total-seconds: ...``).
This script rewrites the text between the README's ``ci-figures`` markers from them, and touches
nothing else. The figures are never compared in a test (they change with every test added);
tests/test_readme_facts.py checks that the block is there and reads as this script writes it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = (
	"<!-- ci-figures: begin (scripts/update_readme_counts.py writes this from .ci/tmp/last-summary.txt) -->"
)
END = "<!-- ci-figures: end -->"
RUNS = ("suite", "compatibility", "croniter-low", "croniter-high")
PYTEST_LINE = re.compile(r"^(?P<counts>\d+ \w+(?:, \d+ \w+)*) in (?P<seconds>[\d.]+)s\b")


class SummaryError(ValueError):
	"""The summary file lacks a run or a run's line is not pytest's closing line."""


def read_summary(text: str) -> dict[str, str]:
	values = {}
	for line in text.splitlines():
		key, sep, value = line.partition(": ")
		if sep:
			values[key.strip()] = value.strip()
	missing = [key for key in (*RUNS, "started", "total-seconds") if key not in values]
	if missing:
		raise SummaryError(f"the summary has no line for {', '.join(missing)}")
	for run in RUNS:
		if not PYTEST_LINE.match(values[run]):
			raise SummaryError(f"{run}: {values[run]!r} is not a pytest closing line ('N passed ... in Ss')")
	return values


def duration(seconds: float) -> str:
	whole = round(seconds)
	if whole < 60:
		return f"{whole} s"
	minutes, rest = divmod(whole, 60)
	return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def figures(values: dict[str, str]) -> str:
	"""The block's text: one sentence per run, counts in bold, durations in minutes and seconds."""

	def run(name: str) -> str:
		match = PYTEST_LINE.match(values[name])
		return f"**{match['counts']}** in {duration(float(match['seconds']))}"

	started = values["started"].replace("T", " ").replace("Z", " UTC")
	total = duration(float(values["total-seconds"]))
	low, high = values.get("croniter-low-version", "?"), values.get("croniter-high-version", "?")
	return (
		f"Latest run ({started}, `bash .ci/run`, {total} in all): the suite {run('suite')}; the "
		f"compatibility run {run('compatibility')}; the cron tests on croniter {low} {run('croniter-low')} "
		f"and on croniter {high} {run('croniter-high')}."
	)


def rewrite(readme: str, block: str) -> str:
	if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
		raise SummaryError("README.md must hold the ci-figures begin and end markers once each, in order")
	head, rest = readme.split(BEGIN, 1)
	_old, tail = rest.split(END, 1)
	return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--summary", default=str(ROOT / ".ci" / "tmp" / "last-summary.txt"))
	parser.add_argument("--readme", default=str(ROOT / "README.md"))
	args = parser.parse_args(argv)
	try:
		values = read_summary(Path(args.summary).read_text(encoding="utf-8"))
		readme = Path(args.readme)
		updated = rewrite(readme.read_text(encoding="utf-8"), figures(values))
	except (OSError, SummaryError) as exc:
		print(f"update_readme_counts: {exc}", file=sys.stderr)
		return 1
	readme.write_text(updated, encoding="utf-8")
	print(f"update_readme_counts: {args.readme}: {figures(values)}")
	return 0


if __name__ == "__main__":
	sys.exit(main())
