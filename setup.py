"""BTU: Background Tasks Unleashed (a Frappe app) and its bundled scheduler daemon."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "btu" / "__init__.py").read_text()).group(1)
REQUIREMENTS = [
    line.strip() for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="btu",
    version=VERSION,
    description="Background Tasks Unleashed: scheduled Python tasks for Frappe, with a scheduler daemon",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    author="BTU developers",
    license="MIT",
    packages=find_packages(exclude=("tests", "tests.*", "bench", "chaos")),
    include_package_data=True,
    package_data={"btu": ["*.txt", "**/*.json", "**/*.js", "**/*.html", "**/*.css", "**/*.svg", "**/*.txt", "**/*.md"]},
    zip_safe=False,
    python_requires=">=3.10",
    install_requires=REQUIREMENTS,
    extras_require={
        "test": ["pytest>=7", "psutil>=5.9"],
        "metrics": ["prometheus_client>=0.16"],
    },
    entry_points={"console_scripts": ["btu-scheduler=btu.scheduler_daemon.cli:main"]},
)
