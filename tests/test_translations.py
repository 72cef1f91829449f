"""Translations, checked without frappe: every user-facing string of BTU's Frappe side is marked for
translation, and the shipped translation (btu/translations/de.csv) covers every string Frappe extracts.

What Frappe v15 translates (frappe/translate.py, frappe/gettext/extractors):

* Python: ``_("literal")`` (babel's Python extractor; ``context=`` is a keyword);
* JavaScript: ``__("literal", [args], "context")``; Jinja and microtemplates (.html): ``_("literal")``;
* DocType JSON: the DocType's name and description, each field's label and description, the options of
  Select fields (not numbers, not icons), the content of HTML fields, connection groups and linked
  DocTypes, the roles of its permissions; the module's name;
* Report JSON: the report name; Page JSON: the title; Workspace JSON: its label, chart, number card,
  link and shortcut labels, link descriptions, shortcut count formats, header and paragraph texts.

The checks:

1. message-bearing calls (``frappe.throw`` / ``msgprint`` / ``throw_text`` / ``show_alert`` /
   ``set_headline`` / ``add_custom_button`` / ``set_intro`` / ``set_indicator`` / page actions / dialog
   titles and field labels / ``sendmail(subject=)`` / report column labels, ...) and HTML built in Desk
   scripts and email templates carry no bare text: it is wrapped in ``_()`` / ``__()``;
2. ``_()`` / ``__()`` get a literal message (placeholders ``{0}`` filled by ``.format`` / the args list),
   never an f-string, a template literal with ``${}``, a concatenation or a formatted string; a
   variable is allowed only where its values are extracted from elsewhere (DYNAMIC below);
3. de.csv is in Frappe's format (``source,translation[,context]``), translates every extracted string
   (placeholders and markup kept) and holds no string that is no longer extracted.

``python tests/test_translations.py [lang]`` prints the strings btu/translations/<lang>.csv (de by
default) misses, as CSV rows to translate: every string for a new language.
The daemon (btu/scheduler_daemon) and btu/contracts never import frappe: their messages are log and
command-line text, outside these checks.
"""

from __future__ import annotations

import ast
import csv
import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "btu"
TRANSLATION = APP / "translations" / "de.csv"
# frappe-free parts: no Desk, no user-facing messages.
FRAPPE_FREE = ("scheduler_daemon", "contracts")

# ------------------------------------------------------------------ files


def _app_files(*suffixes: str, frappe_side: bool = True) -> list[Path]:
	"""The app's files with these suffixes (Frappe's walk: every folder but __pycache__ and public/dist)."""
	out = []
	for path in sorted(APP.rglob("*")):
		rel = path.relative_to(APP).parts
		if not path.is_file() or path.suffix not in suffixes or "__pycache__" in rel:
			continue
		if rel[:2] == ("public", "dist"):
			continue
		if frappe_side and rel[0] in FRAPPE_FREE:
			continue
		out.append(path)
	return out


# Console text: upgrade patches and bench commands print to the terminal of `bench migrate` /
# `bench execute` (English, like the daemon's command line).
CONSOLE = ("patches", "commands")


def _checked_py_files() -> list[Path]:
	"""Python a user sees messages from: not the tests, the test helpers or console text."""
	return [
		p
		for p in _app_files(".py")
		if not p.name.startswith("test_")
		and p.name not in ("testing.py", "testing_smtp.py")
		and p.relative_to(APP).parts[0] not in CONSOLE
	]


def _rel(path: Path) -> str:
	return str(path.relative_to(ROOT))


def is_translatable(message: str) -> bool:
	"""Frappe's rule (frappe/gettext/extractors/utils.py)."""
	return bool(
		re.search("[a-zA-Z]", message)
		and not message.startswith("fa fa-")
		and not message.endswith("px")
		and not message.startswith("eval:")
	)


# ------------------------------------------------------------------ HTML text

_TAG = re.compile(r"<[^<>]*>")
_TEXT_ATTR = re.compile(r"""\b(?:title|placeholder|alt|aria-label)\s*=\s*(["'])(.*?)\1""", re.S)
# What may stand in markup untranslated: numbers, punctuation, units, entities.
_NOT_WORDS = re.compile(r"&[#\w]+;|\b(?:s|ms|px)\b|\x00")


def bare_html_text(text: str) -> list[str]:
	"""Words in markup ``text`` that are not wrapped (``\\x00`` stands for an interpolation)."""
	if not re.search(r"<[a-zA-Z/!]", text):
		return []
	found = []
	for piece in _TAG.split(text):
		words = _NOT_WORDS.sub(" ", piece)
		if re.search("[a-zA-Z]", words):
			found.append(piece.strip())
	for tag in _TAG.findall(text):
		for _q, value in _TEXT_ATTR.findall(tag):
			if re.search("[a-zA-Z]", _NOT_WORDS.sub(" ", value)):
				found.append(value)
	return found


# ------------------------------------------------------------------ Python

# Calls whose message (first argument or these keywords) a user reads.
PY_MESSAGE_CALLS = {"throw", "msgprint", "throw_text", "publish_progress", "show_alert"}
PY_MESSAGE_KEYWORDS = {"msg", "message", "title", "subject"}
# Dict entries a Desk view shows (report columns, chart datasets, report summaries).
PY_LABEL_KEYS = {"label"}


def _call_name(node: ast.Call) -> str:
	func = node.func
	if isinstance(func, ast.Attribute):
		return func.attr
	if isinstance(func, ast.Name):
		return func.id
	return ""


def _is_tr_call(node: ast.AST) -> bool:
	return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "_lt")


def _bare_py_text(node: ast.AST) -> list[str]:
	"""Unwrapped text in an expression that becomes a message."""
	if _is_tr_call(node):
		return []
	if isinstance(node, ast.Constant) and isinstance(node.value, str):
		return [node.value] if is_translatable(node.value) else []
	if isinstance(node, ast.JoinedStr):  # an f-string's own text; its {values} are looked at too
		out = [
			v.value for v in node.values if isinstance(v, ast.Constant) and re.search("[a-zA-Z]{2}", v.value)
		]
		for v in node.values:
			if isinstance(v, ast.FormattedValue):
				out += _bare_py_text(v.value)
		return out
	if isinstance(node, ast.BinOp):
		return _bare_py_text(node.left) + _bare_py_text(node.right)
	if isinstance(node, ast.BoolOp):
		return [t for v in node.values for t in _bare_py_text(v)]
	if isinstance(node, ast.IfExp):
		return _bare_py_text(node.body) + _bare_py_text(node.orelse)
	if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
		return _bare_py_text(node.func.value)
	return []


def _py_trees() -> list[tuple[Path, ast.AST]]:
	return [(p, ast.parse(p.read_text(encoding="utf-8"), str(p))) for p in _checked_py_files()]


def py_unwrapped() -> list[str]:
	problems = []
	for path, tree in _py_trees():
		for node in ast.walk(tree):
			if isinstance(node, ast.Call) and _call_name(node) in PY_MESSAGE_CALLS and not _is_tr_call(node):
				args = node.args[:1] + [k.value for k in node.keywords if k.arg in PY_MESSAGE_KEYWORDS]
				for arg in args:
					for text in _bare_py_text(arg):
						problems.append(f"{_rel(path)}:{arg.lineno}: {_call_name(node)}() gets bare {text!r}")
			if isinstance(node, ast.Dict):
				for key, value in zip(node.keys, node.values):
					if isinstance(key, ast.Constant) and key.value in PY_LABEL_KEYS:
						for text in _bare_py_text(value):
							problems.append(f"{_rel(path)}:{value.lineno}: {key.value!r} is bare {text!r}")
	return problems


# ------------------------------------------------------------------ JavaScript


@dataclass
class Tok:
	kind: str  # name, str (quoted), tpl (template literal), num, punct, regex
	value: str  # for tpl: its text with \x00 for each ${...}
	line: int
	interpolated: bool = False


_JS_PUNCT_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^")
_JS_KEYWORDS_BEFORE_REGEX = {"return", "typeof", "case", "else", "in", "of", "new", "delete", "void", "throw"}
_JS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def js_tokens(src: str) -> list[Tok]:
	"""A JavaScript tokenizer good enough for Desk scripts: comments, strings, template literals
	(their ${...} expressions tokenized in place, between parentheses), regex literals."""
	tokens: list[Tok] = []
	_tokenize(src, 0, 1, tokens, in_template=False)
	return tokens


def _tokenize(src: str, i: int, line: int, out: list[Tok], in_template: bool) -> tuple[int, int]:
	depth = 0
	n = len(src)
	while i < n:
		c = src[i]
		if c == "\n":
			line += 1
			i += 1
		elif c.isspace():
			i += 1
		elif src.startswith("//", i):
			i = src.find("\n", i)
			i = n if i < 0 else i
		elif src.startswith("/*", i):
			end = src.find("*/", i + 2)
			end = n if end < 0 else end + 2
			line += src.count("\n", i, end)
			i = end
		elif c in "'\"":
			j, chars = i + 1, []
			while j < n and src[j] != c:
				if src[j] == "\\":
					chars.append(_JS_ESCAPES.get(src[j + 1], src[j + 1]))
					j += 2
				else:
					chars.append(src[j])
					j += 1
			out.append(Tok("str", "".join(chars), line))
			i = j + 1
		elif c == "`":
			tok = Tok("tpl", "", line)
			out.append(tok)
			j, chars = i + 1, []
			while j < n and src[j] != "`":
				if src[j] == "\\":
					chars.append(_JS_ESCAPES.get(src[j + 1], src[j + 1]))
					j += 2
				elif src.startswith("${", j):
					chars.append("\x00")
					tok.interpolated = True
					out.append(Tok("punct", "(", line + "".join(chars).count("\n")))
					j, _ = _tokenize(src, j + 2, line + "".join(chars).count("\n"), out, in_template=True)
					out.append(Tok("punct", ")", line))
				else:
					chars.append(src[j])
					j += 1
			tok.value = "".join(chars)
			line += src.count("\n", i, j)
			i = j + 1
		elif c.isalpha() or c in "_$":
			m = re.compile(r"[\w$]+").match(src, i)
			out.append(Tok("name", m.group(0), line))
			i = m.end()
		elif c.isdigit():
			m = re.compile(r"[\w.]+").match(src, i)
			out.append(Tok("num", m.group(0), line))
			i = m.end()
		elif c == "/" and (
			not out
			or (out[-1].kind == "punct" and out[-1].value in _JS_PUNCT_BEFORE_REGEX)
			or (out[-1].kind == "name" and out[-1].value in _JS_KEYWORDS_BEFORE_REGEX)
		):
			j, in_class = i + 1, False
			while j < n and (in_class or src[j] != "/"):
				if src[j] == "\\":
					j += 1
				elif src[j] == "[":
					in_class = True
				elif src[j] == "]":
					in_class = False
				j += 1
			m = re.compile(r"[a-z]*").match(src, j + 1)
			out.append(Tok("regex", src[i : m.end()], line))
			i = m.end()
		else:
			if c == "{":
				depth += 1
			elif c == "}":
				if in_template and depth == 0:
					return i + 1, line
				depth -= 1
			out.append(Tok("punct", c, line))
			i += 1
	return i, line


def _js_args(tokens: list[Tok], open_index: int) -> tuple[list[list[Tok]], int]:
	"""The arguments of the call whose "(" is tokens[open_index] (each a token list), and the index of
	its ")"."""
	args: list[list[Tok]] = [[]]
	depth = 0
	i = open_index + 1
	while i < len(tokens):
		t = tokens[i]
		if t.kind == "punct" and t.value in "([{":
			depth += 1
		elif t.kind == "punct" and t.value in ")]}":
			if depth == 0:
				break
			depth -= 1
		elif t.kind == "punct" and t.value == "," and depth == 0:
			args.append([])
			i += 1
			continue
		args[-1].append(t)
		i += 1
	if args and not args[-1]:
		args.pop()
	return args, i


def _is_js_tr(tokens: list[Tok], i: int) -> bool:
	"""tokens[i] is the name of a ``__(`` call."""
	return (
		tokens[i].kind == "name"
		and tokens[i].value == "__"
		and (i == 0 or tokens[i - 1].value != ".")
		and i + 1 < len(tokens)
		and tokens[i + 1].value == "("
	)


def _bare_js_text(arg: list[Tok]) -> list[str]:
	"""Literal text at the top level of an argument (not in a nested call, array, object or ${})."""
	out, depth = [], 0
	for t in arg:
		if t.kind == "punct" and t.value in "([{":
			depth += 1
		elif t.kind == "punct" and t.value in ")]}":
			depth -= 1
		elif depth == 0 and t.kind in ("str", "tpl"):
			text = t.value.replace("\x00", " ")
			if "<" in text:
				if bare_html_text(t.value):
					out.append(t.value)
			elif re.search("[a-zA-Z]", _NOT_WORDS.sub(" ", text)) and is_translatable(text):
				out.append(t.value)
	return out


# Calls whose first argument a user reads (method name, whatever it is called on).
JS_MESSAGE_CALLS = {
	"throw",
	"msgprint",
	"show_alert",
	"set_headline",
	"set_headline_alert",
	"add_custom_button",
	"set_intro",
	"set_indicator",
	"set_primary_action",
	"set_secondary_action",
	"add_inner_button",
	"add_menu_item",
	"add_action_item",
	"confirm",
	"prompt",
	"set_title",
	"freeze",
	"text",
	"html",
	"append",
	"prepend",
}
# Object properties a user reads: dialog titles, field labels and descriptions, alerts, freeze messages.
JS_MESSAGE_KEYS = {
	"title",
	"label",
	"message",
	"description",
	"primary_action_label",
	"secondary_action_label",
	"freeze_message",
	"placeholder",
}


@lru_cache(maxsize=None)
def _js_file_tokens(path: Path) -> list[Tok]:
	return js_tokens(path.read_text(encoding="utf-8"))


def js_unwrapped() -> list[str]:
	problems = []
	for path in _app_files(".js"):
		tokens = _js_file_tokens(path)
		in_tr: set[int] = set()  # ids of tokens that are the message of a __() call
		for i in range(len(tokens)):
			if _is_js_tr(tokens, i):
				args, _end = _js_args(tokens, i + 1)
				if args:
					in_tr.update(id(t) for t in args[0])
		for i, t in enumerate(tokens):
			nxt = tokens[i + 1] if i + 1 < len(tokens) else None
			if t.kind == "name" and t.value in JS_MESSAGE_CALLS and nxt is not None and nxt.value == "(":
				if (
					i
					and tokens[i - 1].value not in (".",)
					and t.value in ("text", "html", "append", "prepend")
				):
					continue
				args, _end = _js_args(tokens, i + 1)
				for text in _bare_js_text(args[0] if args else []):
					problems.append(f"{_rel(path)}:{t.line}: {t.value}() gets bare {text!r}")
			elif (
				t.kind in ("name", "str")
				and t.value in JS_MESSAGE_KEYS
				and nxt is not None
				and nxt.value == ":"
				and (i == 0 or tokens[i - 1].value in ("{", ","))
			):
				value: list[Tok] = []
				depth = 0
				for v in tokens[i + 2 :]:
					if v.kind == "punct" and v.value in "([{":
						depth += 1
					elif v.kind == "punct" and v.value in ")]}":
						if depth == 0:
							break
						depth -= 1
					elif v.kind == "punct" and v.value == "," and depth == 0:
						break
					value.append(v)
				for text in _bare_js_text(value):
					problems.append(f"{_rel(path)}:{t.line}: {t.value}: is bare {text!r}")
			elif t.kind in ("str", "tpl") and id(t) not in in_tr:
				for text in bare_html_text(t.value):
					problems.append(f"{_rel(path)}:{t.line}: markup with bare text {text!r}")
	return sorted(set(problems), key=lambda p: (p.split(":")[0], int(p.split(":")[1])))


# ------------------------------------------------------------------ Jinja / HTML

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def html_unwrapped() -> list[str]:
	problems = []
	for path in _app_files(".html"):
		text = path.read_text(encoding="utf-8")
		for lineno, line in enumerate(_JINJA.sub("\x00", text).splitlines(), 1):
			for bare in bare_html_text(line):
				problems.append(f"{_rel(path)}:{lineno}: markup with bare text {bare!r}")
	return problems


# ------------------------------------------------------------------ literal messages


@dataclass(frozen=True)
class Message:
	text: str
	context: str | None
	where: str


# ``_(value)`` / ``__(value)`` of a value known only at run time: the argument as written, in the file
# it is written in (a path relative to btu/), and where its values come from: a description (they
# are extracted from elsewhere) or the name of a module-level dict in that file whose values are the
# messages (then they are extracted from it).
_LOG_STATUS = "the Select options of BTU Task Log's Status (success_fail)"
_SCHEDULE_STATUS = "the Select options of BTU Task Schedule's Last Status (last_status)"
DYNAMIC = {
	("btu_api/permissions.py", "MANAGER_ROLE"): "a role of the DocTypes' permissions",
	("btu_api/permissions.py", "doctype"): "a DocType name",
	("btu_api/permissions.py", "ptype"): "Frappe's own permission types (read, write, ...)",
	("btu_core/email_notify.py", "EVENT_LABELS[event]"): "EVENT_LABELS",
	("btu_core/doctype/btu_task_log/btu_task_log.js", 'frm.doc.success_fail||""'): _LOG_STATUS,
	("btu_core/doctype/btu_task_log/btu_task_log.js", "r.retry.status"): _LOG_STATUS,
	("btu_core/doctype/btu_task_log/btu_task_log.js", 'a.success_fail||""'): _LOG_STATUS,
	("btu_core/doctype/btu_task_log/btu_task_log_list.js", 'doc.success_fail||"Unknown"'): _LOG_STATUS,
	("btu_core/doctype/btu_task_schedule/btu_task_schedule.js", "r.state"): _LOG_STATUS,
	("btu_core/page/btu_scheduler_status/btu_scheduler_status.js", 'l.success_fail||""'): _LOG_STATUS,
	("public/js/btu.js", "run.status"): _LOG_STATUS,
	("btu_core/doctype/btu_task/btu_task.js", "l.success_fail"): _LOG_STATUS,
	("btu_core/doctype/btu_task_schedule/btu_task_schedule_list.js", "value"): _SCHEDULE_STATUS,
	("btu_core/doctype/btu_task_schedule/btu_task_schedule_list.js", "doc.last_status"): _SCHEDULE_STATUS,
	(
		"btu_core/page/btu_scheduler_status/btu_scheduler_status.js",
		"a.kind",
	): "the Select options of BTU Alert's Kind",
}


def _dict_values(tree: ast.AST, name: str) -> list[str]:
	"""The string values of the module-level dict ``name = {...}``."""
	for node in tree.body:
		if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
			return [v.value for v in node.value.values if isinstance(v, ast.Constant)]
	raise AssertionError(f"no module-level dict {name}")


def _js_source(tokens: list[Tok]) -> str:
	return "".join(json.dumps(t.value) if t.kind == "str" else t.value for t in tokens)


def _py_messages() -> tuple[list[Message], list[str]]:
	messages, problems = [], []
	for path in _app_files(".py", frappe_side=False):
		tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
		rel = str(path.relative_to(APP))
		for node in ast.walk(tree):
			if not _is_tr_call(node):
				continue
			where = f"{_rel(path)}:{node.lineno}"
			arg = node.args[0] if node.args else None
			if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
				context = next(
					(
						k.value.value
						for k in node.keywords
						if k.arg == "context" and isinstance(k.value, ast.Constant)
					),
					None,
				)
				if is_translatable(arg.value):
					messages.append(Message(arg.value, context, where))
			elif arg is not None and (rel, ast.unparse(arg)) in DYNAMIC:
				source = DYNAMIC[rel, ast.unparse(arg)]
				if re.fullmatch(r"[A-Z_]+", source):
					messages += [Message(v, None, where) for v in _dict_values(tree, source)]
			else:
				shown = ast.unparse(arg) if arg is not None else "nothing"
				problems.append(f"{where}: _() gets {shown}, not a literal message")
	return messages, problems


def _is_select_options(tokens: list[Tok], i: int) -> bool:
	"""tokens[i] starts ``options: [...]`` of a Desk field: Frappe's Select control shows each
	option through __(), so they are messages though no __() is written."""
	return (
		tokens[i].value == "options"
		and i + 2 < len(tokens)
		and tokens[i + 1].value == ":"
		and tokens[i + 2].value == "["
	)


def _js_messages() -> tuple[list[Message], list[str]]:
	messages, problems = [], []
	for path in _app_files(".js", frappe_side=False):
		tokens = _js_file_tokens(path)
		rel = str(path.relative_to(APP))
		for i in range(len(tokens)):
			if _is_select_options(tokens, i):
				for t in tokens[i + 3 :]:
					if t.value == "]":
						break
					if t.kind == "str" and is_translatable(t.value):
						messages.append(Message(t.value, None, f"{_rel(path)}:{t.line}"))
			if not _is_js_tr(tokens, i):
				continue
			args, _end = _js_args(tokens, i + 1)
			where = f"{_rel(path)}:{tokens[i].line}"
			first = args[0] if args else []
			literal = len(first) == 1 and (
				first[0].kind == "str" or (first[0].kind == "tpl" and not first[0].interpolated)
			)
			if literal:
				context = None
				if len(args) >= 3 and len(args[2]) == 1 and args[2][0].kind == "str":
					context = args[2][0].value
				if is_translatable(first[0].value):
					messages.append(Message(first[0].value, context, where))
			elif (rel, _js_source(first)) in DYNAMIC:
				pass
			else:
				shown = _js_source(first) or "nothing"
				problems.append(f"{where}: __() gets {shown}, not a literal message")
	return messages, problems


_JINJA_TR = re.compile(r"""(?<![\w.])_{1,2}\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def _html_messages() -> list[Message]:
	messages = []
	for path in _app_files(".html", frappe_side=False):
		text = path.read_text(encoding="utf-8")
		for m in _JINJA_TR.finditer(text):
			message = m.group(1) if m.group(1) is not None else m.group(2)
			if is_translatable(message):
				line = text.count("\n", 0, m.start()) + 1
				messages.append(Message(message, None, f"{_rel(path)}:{line}"))
	return messages


def _json_messages() -> list[Message]:
	"""DocType, Report, Page and Workspace JSON, as Frappe's extractors read them."""
	out: list[tuple[str, Path]] = []
	for path in _app_files(".json", frappe_side=False):
		data = json.loads(path.read_text(encoding="utf-8"))
		if not isinstance(data, dict):
			continue
		kind = data.get("doctype")
		texts: list[str | None] = []
		if kind == "DocType":
			texts += [data.get("name"), data.get("description"), data.get("module")]
			for field in data.get("fields", []):
				texts += [field.get("label"), field.get("description")]
				options = field.get("options")
				if (
					options
					and field.get("fieldtype") == "Select"
					and field.get("fieldname") != "naming_series"
				):
					choices = [o for o in options.split("\n") if o and not o.isdigit()]
					if choices and "icon" not in choices[0]:
						texts += choices
				elif options and field.get("fieldtype") == "HTML":
					texts.append(options)
			for link in data.get("links", []):
				texts += [link.get("group"), link.get("link_doctype")]
			texts += [perm.get("role") for perm in data.get("permissions", [])]
		elif kind == "Report":
			texts.append(data.get("report_name"))
		elif kind == "Page":
			texts.append(data.get("title") or data.get("name"))
		elif kind == "Workspace":
			texts.append(data.get("label"))
			texts += [c.get("label") for c in data.get("charts", [])]
			texts += [c.get("label") for c in data.get("number_cards", [])]
			for link in data.get("links", []):
				texts += [link.get("label"), link.get("description")]
			for shortcut in data.get("shortcuts", []):
				texts += [shortcut.get("label"), shortcut.get("format")]
			for block in json.loads(data.get("content") or "[]"):
				if block.get("type") in ("header", "paragraph"):
					texts.append(block.get("data", {}).get("text"))
		out += [(t, path) for t in texts if t and is_translatable(t)]
	return [Message(text, None, _rel(path)) for text, path in out]


def extracted_messages() -> tuple[list[Message], list[str]]:
	py, py_problems = _py_messages()
	js, js_problems = _js_messages()
	return py + js + _html_messages() + _json_messages(), py_problems + js_problems


# ------------------------------------------------------------------ the translation


def read_translation(path: Path = TRANSLATION) -> list[list[str]]:
	with open(path, encoding="utf-8", newline="") as f:
		return list(csv.reader(f))


def _key(text: str, context: str | None) -> str:
	return f"{text}:{context}" if context else text


def missing_translations(path: Path = TRANSLATION) -> list[Message]:
	rows = read_translation(path) if path.exists() else []
	keys = {_key(r[0], r[2] if len(r) == 3 else None) for r in rows if len(r) in (2, 3)}
	messages, _problems = extracted_messages()
	missing, seen = [], set()
	for m in messages:
		key = _key(m.text, m.context)
		if key not in keys and m.text not in keys and key not in seen:
			seen.add(key)
			missing.append(m)
	return missing


# ------------------------------------------------------------------ tests


def _report(problems: list[str], what: str) -> str:
	return f"{len(problems)} {what}:\n  " + "\n  ".join(problems)


def test_message_calls_in_python_wrap_their_text():
	problems = py_unwrapped()
	assert not problems, _report(problems, "Python messages not wrapped in _()")


def test_desk_scripts_wrap_their_text():
	problems = js_unwrapped()
	assert not problems, _report(problems, "Desk script texts not wrapped in __()")


def test_templates_wrap_their_text():
	problems = html_unwrapped()
	assert not problems, _report(problems, "template texts not wrapped in _()")


def test_translation_calls_get_a_literal_message():
	messages, problems = extracted_messages()
	# Frappe strips the translation read from the CSV file, never the source: a message with spaces
	# around it loses them in every language but English.
	problems += [f"{m.where}: {m.text!r} has spaces around it" for m in messages if m.text != m.text.strip()]
	assert not problems, _report(problems, "translation calls without a literal message")


def _where(m: Message) -> str:
	return f"{m.where}: {m.text!r}" + (f" (context {m.context!r})" if m.context else "")


# Every shipped language is kept complete; German is the one BTU ships.
LANGUAGES = sorted({p.stem for p in (APP / "translations").glob("*.csv")} | {"de"})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translation_is_complete(lang):
	path = APP / "translations" / f"{lang}.csv"
	assert path.exists(), f"{_rel(path)} is missing"
	missing = missing_translations(path)
	assert not missing, _report(
		[_where(m) for m in missing],
		f"strings {_rel(path)} does not translate (`python tests/test_translations.py {lang}` lists them as CSV)",
	)


_PLACEHOLDER = re.compile(r"\{\d*(?:![rsa])?(?::[^{}]*)?\}")
_MARKUP = re.compile(r"</?([a-zA-Z][\w-]*)")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translation_is_well_formed_and_has_nothing_stale(lang):
	path = APP / "translations" / f"{lang}.csv"
	rows = read_translation(path)
	messages, _problems = extracted_messages()
	extracted = {_key(m.text, m.context) for m in messages} | {m.text for m in messages}
	problems, seen = [], set()
	for number, row in enumerate(rows, 1):
		if len(row) not in (2, 3):
			problems.append(f"row {number}: {len(row)} columns, not source,translation[,context]")
			continue
		source, translated = row[0], row[1]
		key = _key(source, row[2] if len(row) == 3 else None)
		if key in seen:
			problems.append(f"row {number}: {source!r} twice")
		seen.add(key)
		if not translated.strip():
			problems.append(f"row {number}: {source!r} has no translation")
		if translated != translated.strip() and source == source.strip():
			problems.append(f"row {number}: the translation of {source!r} has spaces around it")
		if sorted(_PLACEHOLDER.findall(source)) != sorted(_PLACEHOLDER.findall(translated)):
			problems.append(f"row {number}: {source!r} and {translated!r} have different placeholders")
		if sorted(_MARKUP.findall(source)) != sorted(_MARKUP.findall(translated)):
			problems.append(f"row {number}: {source!r} and {translated!r} have different markup")
		if key not in extracted:
			problems.append(f"row {number}: {source!r} is no longer in the app (remove the row)")
	assert not problems, _report(problems, f"problems in {_rel(path)}")


def test_the_scanners_see_what_they_are_meant_to():
	"""The checks above pass only if they can fail: a sample of each mistake is found."""
	js = js_tokens(
		'frm.add_custom_button("Retry", () => x);\n'
		'frappe.msgprint({title: `Done ${n}`, indicator: "red", message: __("Ok")});\n'
		'const re = /a\\/b/g; const h = `<p>${__("Hi")} there</p>`;\n'
		'page.set_indicator(ok ? __("Running") : "Stopped", "red");\n'
	)
	names = [t.value for t in js if t.kind == "name"]
	assert "re" in names and any(t.kind == "regex" for t in js)
	assert _bare_js_text(_js_args(js, 3)[0][0]) == ["Retry"]
	assert bare_html_text("<p>\x00 there</p>") == ["\x00 there"]
	assert bare_html_text("<b>\x00 s</b>&nbsp;<code>\x00</code>") == []
	tree = ast.parse(
		'frappe.throw("No", title=_("T"))\nfrappe.throw(_("Yes {0}").format(x), title=f"Title {x}")'
	)
	calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) == "throw"]
	assert [_bare_py_text(c.args[0]) for c in calls] == [["No"], []]
	assert _bare_py_text(calls[1].keywords[0].value) == ["Title "]


if __name__ == "__main__":
	# The strings btu/translations/<lang>.csv misses (de by default; all of them for a new language),
	# as rows to translate: source,translation,context.
	lang = sys.argv[1] if len(sys.argv) > 1 else "de"
	out = csv.writer(sys.stdout, lineterminator="\n")
	for m in missing_translations(APP / "translations" / f"{lang}.csv"):
		out.writerow([m.text, "", m.context or ""])
