"""The house's boundaries, read from the import statements of every module:

* ``btu.contracts`` (what the app and the daemon agree on) imports neither frappe nor any
  other part of BTU;
* ``btu.scheduler_daemon`` imports nothing of frappe and nothing of the Frappe module
  (``btu.btu_core``, ``btu.btu_api``, ``btu.patches``): only ``btu.contracts`` and itself;
* BTU's modules import one another without a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "btu"


def module_name(path: Path) -> str:
	parts = list(path.relative_to(ROOT).with_suffix("").parts)
	if parts[-1] == "__init__":
		parts.pop()
	return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
	"""Absolute names of what a module imports (relative imports resolved), at any depth of the file."""
	tree = ast.parse(path.read_text(encoding="utf-8"))
	package = module_name(path).split(".")
	if path.name != "__init__.py":
		package = package[:-1]
	found: set[str] = set()
	for node in ast.walk(tree):
		if isinstance(node, ast.Import):
			found.update(alias.name for alias in node.names)
		elif isinstance(node, ast.ImportFrom):
			if node.level:
				base = package[: len(package) - node.level + 1]
				prefix = ".".join(base + ([node.module] if node.module else []))
			else:
				prefix = node.module or ""
			found.add(prefix)
			found.update(f"{prefix}.{alias.name}" for alias in node.names)
	return found


def btu_modules() -> dict[str, Path]:
	return {module_name(p): p for p in APP.rglob("*.py")}


def _starts(name: str, roots: tuple[str, ...]) -> bool:
	return any(name == root or name.startswith(root + ".") for root in roots)


def test_contracts_import_neither_frappe_nor_the_rest_of_btu():
	for name, path in btu_modules().items():
		if not _starts(name, ("btu.contracts",)):
			continue
		for imported in imported_modules(path):
			assert not _starts(imported, ("frappe",)), f"{name} imports {imported}"
			if _starts(imported, ("btu",)):
				assert _starts(imported, ("btu.contracts",)), f"{name} imports {imported}"


def test_daemon_imports_only_itself_and_the_contracts():
	allowed = ("btu.scheduler_daemon", "btu.contracts")
	for name, path in btu_modules().items():
		if not _starts(name, ("btu.scheduler_daemon",)):
			continue
		for imported in imported_modules(path):
			assert not _starts(imported, ("frappe",)), f"{name} imports {imported}"
			if _starts(imported, ("btu",)) and imported not in ("btu", "btu.__version__"):
				assert _starts(imported, allowed), (
					f"{name} imports {imported}: the daemon may import only {allowed}"
				)


def test_no_import_circle():
	modules = btu_modules()
	graph: dict[str, set[str]] = {}
	for name, path in modules.items():
		targets = set()
		for imported in imported_modules(path):
			# "from btu.x import y" names module btu.x.y or attribute y of btu.x: take the longest module
			while imported and imported not in modules:
				imported = imported.rpartition(".")[0]
			if imported and imported != name and imported != "btu":
				targets.add(imported)
		graph[name] = targets
	state: dict[str, int] = {}

	def visit(node: str, trail: list[str]) -> None:
		state[node] = 1
		for target in sorted(graph.get(node, ())):
			if state.get(target) == 1:
				cycle = trail[trail.index(target) :] + [target] if target in trail else [node, target]
				raise AssertionError("import circle: " + " -> ".join(cycle))
			if not state.get(target):
				visit(target, trail + [target])
		state[node] = 2

	for node in sorted(graph):
		if not state.get(node):
			visit(node, [node])
