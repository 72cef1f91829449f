"""btu.btu_core.output_capture: real capture of task output, no frappe needed."""

from __future__ import annotations

import sys
import threading

import pytest

from btu.btu_core.output_capture import active_captures, capture_output


def chatty_task(n: int) -> int:
	"""A task the way people write them: print, write to stderr, call sys.stdout.write."""
	print(f"starting {n}")
	print("warning: low disk", file=sys.stderr)
	sys.stdout.write("raw write\n")
	sys.stderr.write("raw error\n")
	return n * 2


def failing_task() -> None:
	print("before the failure")
	raise RuntimeError("boom")


def test_captures_print_and_stderr_from_a_function(capsys):
	with capture_output() as out:
		result = chatty_task(21)
	assert result == 42
	assert out.text == "starting 21\nwarning: low disk\nraw write\nraw error\n"
	assert out.stdout == "starting 21\nraw write\n"
	assert out.stderr == "warning: low disk\nraw error\n"
	# Captured text did not leak to the real streams.
	real = capsys.readouterr()
	assert real.out == "" and real.err == ""


def test_streams_are_restored_and_output_flows_again(capsys):
	before_out, before_err = sys.stdout, sys.stderr
	with capture_output():
		assert sys.stdout is not before_out
		print("hidden")
	assert sys.stdout is before_out and sys.stderr is before_err
	print("visible")
	assert capsys.readouterr().out == "visible\n"


def test_exception_propagates_and_keeps_the_output(capsys):
	before = sys.stdout
	with pytest.raises(RuntimeError, match="boom"):
		with capture_output() as out:
			failing_task()
	assert out.text == "before the failure\n"
	assert sys.stdout is before
	assert active_captures() == 0
	assert capsys.readouterr().out == ""


def test_nested_capture_without_echo_isolates_inner_output():
	with capture_output() as outer:
		print("outer 1")
		with capture_output() as inner:
			print("inner")
			assert active_captures() == 2
		print("outer 2")
	assert inner.text == "inner\n"
	assert outer.text == "outer 1\nouter 2\n"


def test_nested_capture_with_echo_passes_text_outwards(capsys):
	with capture_output() as outer:
		with capture_output(echo=True) as inner:
			print("both")
	assert inner.text == "both\n"
	assert outer.text == "both\n"
	assert capsys.readouterr().out == ""


def test_echo_at_outermost_level_reaches_the_real_stream(capsys):
	with capture_output(echo=True) as out:
		print("repeat me")
		print("and me", file=sys.stderr)
	assert out.text == "repeat me\nand me\n"
	real = capsys.readouterr()
	assert real.out == "repeat me\n"
	assert real.err == "and me\n"


def test_nested_exception_unwinds_both_levels():
	with capture_output() as outer:
		with pytest.raises(ValueError):
			with capture_output() as inner:
				print("inner before")
				raise ValueError("x")
		print("outer after")
	assert inner.text == "inner before\n"
	assert outer.text == "outer after\n"
	assert active_captures() == 0


def test_other_threads_are_not_captured(capsys):
	started = threading.Event()
	release = threading.Event()

	def bystander() -> None:
		started.wait(5)
		print("from another thread")
		release.set()

	thread = threading.Thread(target=bystander)
	thread.start()
	with capture_output() as out:
		print("mine")
		started.set()
		assert release.wait(5)
	thread.join(5)
	assert out.text == "mine\n"
	assert "from another thread\n" in capsys.readouterr().out


def test_concurrent_captures_in_two_threads_stay_separate():
	results: dict[str, str] = {}
	barrier = threading.Barrier(2)

	def worker(tag: str) -> None:
		with capture_output() as out:
			for i in range(200):
				print(f"{tag}{i}")
				if i == 100:
					barrier.wait(5)
		results[tag] = out.text

	threads = [threading.Thread(target=worker, args=(tag,)) for tag in ("a", "b")]
	for t in threads:
		t.start()
	for t in threads:
		t.join(10)
	assert results["a"] == "".join(f"a{i}\n" for i in range(200))
	assert results["b"] == "".join(f"b{i}\n" for i in range(200))


def test_output_beyond_max_chars_keeps_head_and_tail():
	with capture_output(max_chars=20) as out:
		sys.stdout.write("A" * 10)
		sys.stdout.write("m" * 100)
		sys.stdout.write("Z" * 10)
	assert out.total_chars == 120
	assert out.text.startswith("A" * 10)
	assert out.text.endswith("Z" * 10)
	assert "[... 100 characters omitted ...]" in out.text


def test_unlimited_capture_keeps_everything():
	with capture_output(max_chars=None) as out:
		sys.stdout.write("x" * 50_000)
	assert out.text == "x" * 50_000


def test_write_rejects_bytes_like_a_real_text_stream():
	with capture_output():
		with pytest.raises(TypeError):
			sys.stdout.write(b"bytes")  # type: ignore[arg-type]


def test_proxy_exposes_the_real_stream_attributes():
	real_encoding = sys.stdout.encoding
	with capture_output() as out:
		assert sys.stdout.encoding == real_encoding
		sys.stdout.flush()
		sys.stdout.writelines(["a\n", "b\n"])
	assert out.text == "a\nb\n"
