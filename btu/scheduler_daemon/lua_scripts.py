"""The daemon's Redis scripts, kept as files in ``lua/`` and loaded by name (as BullMQ keeps its own).

A file is a header, then the script. The header is the file's first lines that start with ``--``:
documentation (what the script does, its KEYS and ARGV, what it returns) and, optionally, one line
``-- uses: name, name`` naming the shared helper functions the script calls, each a file of its own
in ``lua/`` (``scores_of.lua``, ``rq_time.lua``, ``set_markers.lua``, ``drop_prepared.lua``). The
header is never sent to Redis; the script starts at the first line that does not start with ``--``
(a blank line included) and runs to the end of the file.

``load(name)`` composes what Redis receives: the helpers named by ``-- uses:`` in that order (each
composed the same way, each once), then the script itself. Its SHA1 (``sha(name)``) is what EVALSHA
names, so a script changes its SHA exactly when the composed text changes.
"""

from __future__ import annotations

import hashlib
import threading
from importlib import resources

PACKAGE = __package__ or "btu.scheduler_daemon"
FOLDER = "lua"
USES = "-- uses:"

_lock = threading.Lock()
_files: dict[str, tuple[tuple[str, ...], str]] = {}
_composed: dict[str, str] = {}


def path(name: str):
	"""The file of a script (a Traversable: in a wheel, an installed package or a zip)."""
	return resources.files(PACKAGE).joinpath(FOLDER, f"{name}.lua")


def names() -> list[str]:
	"""Every script and helper shipped with the daemon."""
	folder = resources.files(PACKAGE).joinpath(FOLDER)
	return sorted(entry.name[: -len(".lua")] for entry in folder.iterdir() if entry.name.endswith(".lua"))


def parse(text: str) -> tuple[tuple[str, ...], str]:
	"""(helpers the script uses, the script without its header) of a file's text."""
	uses: list[str] = []
	lines = text.splitlines(keepends=True)
	start = 0
	for line in lines:
		if not line.startswith("--"):
			break
		if line.startswith(USES):
			uses += [word.strip() for word in line[len(USES) :].split(",") if word.strip()]
		start += 1
	return tuple(uses), "".join(lines[start:])


def _file(name: str) -> tuple[tuple[str, ...], str]:
	found = _files.get(name)
	if found is None:
		found = _files[name] = parse(path(name).read_text(encoding="utf-8"))
	return found


def _compose(name: str, seen: list[str], parts: list[str], chain: tuple[str, ...]) -> None:
	if name in chain:
		raise ValueError(f"Lua script {name!r} uses itself: {' -> '.join(chain + (name,))}")
	uses, body = _file(name)
	for helper in uses:
		if helper not in seen:
			_compose(helper, seen, parts, chain + (name,))
	if name not in seen:
		seen.append(name)
		parts.append(body)


def load(name: str) -> str:
	"""The text Redis receives for script ``name``: its helpers, then itself (cached)."""
	with _lock:
		text = _composed.get(name)
		if text is None:
			parts: list[str] = []
			_compose(name, [], parts, ())
			text = _composed[name] = "".join(parts)
		return text


def sha(name: str) -> str:
	"""The SHA1 EVALSHA names the composed script by."""
	return hashlib.sha1(load(name).encode()).hexdigest()
