"""The layout the project was asked for: pyproject.toml is the one source of metadata, setup.py only
defers to it, requirements.txt lists the same runtime dependencies, and a built wheel carries the
app's data files (DocType JSON, Desk JS, CSS, templates, text files, translations, Lua scripts)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _normalized(requirement: str) -> str:
	"""A requirement without spaces, its name lower-case with '-' for '_' / '.' (PEP 503), its
	version clauses sorted (a wheel's metadata may list them in another order)."""
	text = re.sub(r"\s+", "", requirement)
	name = re.match(r"[A-Za-z0-9._-]+", text).group(0)
	clauses = ",".join(sorted(text[len(name) :].split(",")))
	return re.sub(r"[-_.]+", "-", name).lower() + clauses


def test_requirements_txt_lists_exactly_the_runtime_dependencies_of_pyproject():
	lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
	listed = [_normalized(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]
	declared = [_normalized(req) for req in PYPROJECT["project"]["dependencies"]]
	assert sorted(listed) == sorted(declared), (
		"requirements.txt and pyproject.toml's [project] dependencies differ: "
		f"only in requirements.txt {sorted(set(listed) - set(declared))}, "
		f"only in pyproject.toml {sorted(set(declared) - set(listed))}"
	)
	assert len(listed) == len(set(listed)), "requirements.txt names a requirement twice"


def test_setup_py_only_calls_setup_and_the_backend_honours_it():
	tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
	calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
	assert len(calls) == 1 and isinstance(calls[0].func, ast.Name) and calls[0].func.id == "setup"
	assert not calls[0].args and not calls[0].keywords, (
		"setup.py must pass nothing to setup(): every piece of metadata lives in pyproject.toml"
	)
	imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
	assert [(node.module, [a.name for a in node.names]) for node in imports] == [("setuptools", ["setup"])]
	backend = PYPROJECT["build-system"]
	assert backend["build-backend"] == "setuptools.build_meta"
	assert any(req.replace(" ", "").startswith("setuptools>=") for req in backend["requires"])
	assert PYPROJECT["project"]["dynamic"] == ["version"]
	assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "btu.__version__"}


def _data_files() -> list[str]:
	"""Every file under btu/ that is not Python source: what the app needs beside its code."""
	return sorted(
		path.relative_to(ROOT).as_posix()
		for path in (ROOT / "btu").rglob("*")
		if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
	)


def test_a_built_wheel_carries_every_data_file_and_no_test(tmp_path):
	data = _data_files()
	assert any(name.endswith("/btu_task_schedule.json") for name in data)  # the walk found the DocTypes
	assert "btu/translations/de.csv" in data  # and the shipped translation
	# Built from a clean copy, as from a fresh clone: a build in the work tree would leave build/ and
	# btu.egg-info/ there, and reuse them in the next build.
	source = tmp_path / "source"
	source.mkdir()
	for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "license.txt", "requirements.txt"):
		shutil.copy2(ROOT / name, source / name)
	shutil.copytree(ROOT / "btu", source / "btu", ignore=shutil.ignore_patterns("__pycache__"))
	built = subprocess.run(
		[sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check"]
		+ ["-w", str(tmp_path), str(source)],
		capture_output=True,
		text=True,
		timeout=300,
	)
	assert built.returncode == 0, built.stderr[-3000:]
	(wheel,) = tmp_path.glob("btu-*.whl")
	with zipfile.ZipFile(wheel) as archive:
		names = set(archive.namelist())
		metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
		entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt")))
	assert [name for name in data if name not in names] == []
	sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "btu").rglob("*.py"))
	assert [name for name in sources if name not in names] == []
	assert not [name for name in names if name.split("/")[0] in ("tests", "bench", "scripts", "docs")]
	assert any(name.endswith(".dist-info/licenses/license.txt") for name in names)
	import btu

	assert f"\nVersion: {btu.__version__}\n" in metadata
	requires = sorted(
		_normalized(line[len("Requires-Dist: ") :])
		for line in metadata.splitlines()
		if line.startswith("Requires-Dist: ") and "extra ==" not in line
	)
	assert requires == sorted(_normalized(req) for req in PYPROJECT["project"]["dependencies"])
	assert b"btu-scheduler = btu.scheduler_daemon.cli:main" in entry_points
	# The daemon's Redis scripts are files (lua_scripts.py): every one, and every helper a script's
	# `-- uses:` names, must be in the wheel, and load from it as the daemon loads them.
	from btu.scheduler_daemon import lua_scripts

	scripts = lua_scripts.names()
	assert {"prepare", "visible", "move_on", "upsert", "fire_batch"} <= set(scripts)
	wanted = {f"btu/scheduler_daemon/lua/{name}.lua" for name in scripts}
	for name in scripts:
		wanted |= {
			f"btu/scheduler_daemon/lua/{used}.lua"
			for used in lua_scripts.parse(lua_scripts.path(name).read_text(encoding="utf-8"))[0]
		}
	assert sorted(wanted - names) == [], "Lua scripts missing from the wheel"
	unpacked = tmp_path / "unpacked"
	with zipfile.ZipFile(wheel) as archive:
		archive.extractall(unpacked)
	loaded = subprocess.run(
		[sys.executable, "-I", "-c", LOAD_FROM_WHEEL, str(unpacked)],
		capture_output=True,
		text=True,
		timeout=60,
	)
	assert loaded.returncode == 0, loaded.stderr[-3000:]
	assert loaded.stdout.split() == [f"{name}={lua_scripts.sha(name)}" for name in scripts]


# Run in a fresh interpreter whose only BTU is the unpacked wheel: every script composes as from source.
LOAD_FROM_WHEEL = """
import sys
sys.path.insert(0, sys.argv[1])
from btu.scheduler_daemon import lua_scripts
assert lua_scripts.__file__.startswith(sys.argv[1]), lua_scripts.__file__
for name in lua_scripts.names():
	print(f"{name}={lua_scripts.sha(name)}")
"""


def test_lua_scripts_compose_their_helpers_once_and_headers_are_not_sent():
	from btu.scheduler_daemon import lua_scripts

	for name in lua_scripts.names():
		text = lua_scripts.load(name)
		assert "-- uses:" not in text, name
		uses, body = lua_scripts.parse(lua_scripts.path(name).read_text(encoding="utf-8"))
		assert text.endswith(body), name
		for used in uses:
			assert text.count(lua_scripts.parse(lua_scripts.path(used).read_text(encoding="utf-8"))[1]) == 1
	visible = lua_scripts.load("visible")
	assert (
		visible.index("function rq_time")
		< visible.index("function set_markers")
		< visible.index("function scores_of")
	)
