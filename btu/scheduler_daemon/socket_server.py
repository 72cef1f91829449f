"""Socket listener: accept requests on the Unix domain socket and hand them to the daemon.

One thread runs one selector loop over non-blocking sockets; no thread per connection. Each
connection has a deadline for its request (``REQUEST_SECONDS``), for sending the reply and for
draining what the client still sends; its buffer is bounded (``MAX_REQUEST_BYTES``), and so is
the total buffered across connections. Silent connections are held until their deadline (cheap),
up to a cap per peer process (SO_PEERCRED pid) and in total. Beyond a cap, a new connection of the
process at its cap, or of the process holding the most when all are taken, is refused at once with
``daemon busy``; a new connection of any other process sheds that biggest holder's oldest
unanswered one instead, so a well-behaved client is always read however many silent or
reconnecting connections another process keeps. Requests that may block (``status`` reads Redis)
run on a small worker pool; the others are answered on the loop. Rejections and sheds are logged
a few lines per ``LOG_WINDOW`` seconds, then as one aggregated line.
"""

from __future__ import annotations

import errno
import functools
import grp
import logging
import os
import resource
import selectors
import socket
import stat
import struct
import threading
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from btu.contracts.protocol import (
	MAX_REQUEST_BYTES,
	REQUEST_SECONDS,
	ProtocolError,
	Request,
	encode_reply,
	parse_request,
	ping,
)

from .logutil import log_event

log = logging.getLogger("btu.socket")

# Holding a silent connection until its deadline is cheap (one descriptor, a few KiB in the kernel);
# shedding one makes room for the next connect of the same attacker, and every connect queued before
# a good client's delays it (the kernel's accept queue is first come, first served). So the daemon
# holds many, and sheds only beyond that: from the peer process holding the most.
MAX_CONNECTIONS = 8192  # open connections at once, all peers (fewer when the fd limit is low)
MAX_PER_PEER = 4096  # open connections of one peer process (SO_PEERCRED pid)
MAX_BUFFERED = 16 * 1024 * 1024  # bytes of unfinished requests held across all connections
MAX_SLOW = 8  # blocking requests (status) in progress on the worker pool at once
SLOW_WORKERS = 2
SLOW_REQUEST_TYPES = frozenset({"status"})  # may block (Redis): answered off the loop
LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
ACCEPT_BURST = 256  # accepts per loop turn before serving the connections already open
EXPIRE_BURST = 64  # deadlines handled per loop turn: a wave of them does not hold up new clients
WRITE_SECONDS = 2.0  # to hand the reply to a client that does not read
DRAIN_SECONDS = 1.0  # after the reply: read what the client still sends, so closing loses nothing
DRAIN_BYTES = 16 * 1024 * 1024
LOG_WINDOW = 5.0  # seconds per aggregated warning line
LOG_LINES_PER_WINDOW = 10  # rejected requests logged one by one per window; the rest are summed up
TICK_SECONDS = 0.2  # longest select() wait: the stop event is checked this often
FD_RESERVE = 512  # file descriptors left to Redis, SQL and the rest of the daemon

READING, HANDLING, WRITING, DRAINING = "reading", "handling", "writing", "draining"
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
Peer = tuple[int, int]  # (pid, uid); (-1, -n) when the platform has no SO_PEERCRED


class SocketInUse(Exception):
	"""Another live daemon answers on the socket path, or the path is not ours to replace."""


def prepare_path(path: str) -> None:
	"""Remove a stale socket file; refuse when a live daemon answers or the file is not a socket."""
	if not os.path.lexists(path):
		os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
		return
	if not stat.S_ISSOCK(os.lstat(path).st_mode):
		raise SocketInUse(f"{path} exists and is not a socket; refusing to replace it")
	reply = ping(path, timeout=1.0)
	if reply.reachable:
		raise SocketInUse(
			f"another BTU scheduler daemon already answers on {path} (pid {reply.data.get('pid')})"
		)
	os.unlink(path)
	log_event(log, logging.INFO, "stale_socket_removed", path=path)


def connection_limit(wanted: int = MAX_CONNECTIONS) -> int:
	"""``wanted``, or fewer when the process's file descriptor limit leaves too little room
	(the soft limit is raised towards the hard one first)."""
	try:
		soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
		target = wanted + FD_RESERVE
		if soft != resource.RLIM_INFINITY and soft < target:
			new = target if hard == resource.RLIM_INFINITY else min(hard, target)
			if new > soft:
				resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
				soft = new
	except (ValueError, OSError):
		return wanted
	if soft == resource.RLIM_INFINITY:
		return wanted
	return max(16, min(wanted, soft - FD_RESERVE if soft > 2 * FD_RESERVE else soft // 4))


class _Conn:
	__slots__ = ("sock", "peer", "state", "buffer", "out", "deadline", "drained", "closed", "opened")

	def __init__(self, sock: socket.socket, peer: Peer, now: float) -> None:
		self.sock = sock
		self.peer = peer
		self.state = READING
		self.buffer = bytearray()
		self.out = b""
		self.deadline = now + REQUEST_SECONDS
		self.drained = 0
		self.closed = False
		self.opened = now


class _Tally:
	"""What the log says under a flood: a few lines per window, then one aggregated line each."""

	def __init__(self) -> None:
		self._reset()

	def _reset(self) -> None:
		self.started = time.monotonic()
		self.logged = 0
		self.suppressed: Counter[str] = Counter()
		self.shed: Counter[Peer] = Counter()
		self.shed_why: Counter[str] = Counter()

	def rejected(self, reason: str, peer: Peer) -> None:
		if self.logged < LOG_LINES_PER_WINDOW:
			self.logged += 1
			log_event(
				log, logging.WARNING, "socket_request_rejected", reason=reason, pid=_pid(peer), uid=_uid(peer)
			)
		else:
			self.suppressed[reason.split(";")[0][:80]] += 1

	def flush(self, now: float, open_connections: int, force: bool = False) -> None:
		if now - self.started < LOG_WINDOW and not force:
			return
		window = round(now - self.started, 1)
		if self.shed:
			log_event(
				log,
				logging.WARNING,
				"socket_clients_shed",
				count=sum(self.shed.values()),
				peers=",".join(f"pid {_pid(p)} uid {_uid(p)}: {n}" for p, n in self.shed.most_common(5)),
				peer_count=len(self.shed),
				why=",".join(f"{why}: {n}" for why, n in self.shed_why.most_common()),
				open=open_connections,
				window_s=window,
			)
		if self.suppressed:
			log_event(
				log,
				logging.WARNING,
				"socket_requests_rejected",
				count=sum(self.suppressed.values()),
				reasons=", ".join(f"{reason}: {n}" for reason, n in self.suppressed.most_common(5)),
				window_s=window,
			)
		self._reset()


@functools.lru_cache(maxsize=256)
def refusal(message: str) -> bytes:
	"""The encoded ``{"ok": false, ...}`` reply (the same few are sent many times under a flood)."""
	return encode_reply(False, message)


def _pid(peer: Peer) -> int | None:
	return peer[0] if peer[0] >= 0 else None


def _uid(peer: Peer) -> int | None:
	return peer[1] if peer[0] >= 0 else None


class SocketServer:
	def __init__(
		self,
		path: str,
		group: str | None,
		handler: Callable[[Request], bytes],
		on_error: Callable[[], None],
		max_connections: int = MAX_CONNECTIONS,
		max_per_peer: int = MAX_PER_PEER,
	) -> None:
		self.path = path
		self.group = group
		self.handler = handler
		self.on_error = on_error
		self.wanted_connections = max_connections
		self.max_connections = max_connections
		self.max_per_peer = max_per_peer
		self.sock: socket.socket | None = None
		self._inode: int | None = None
		self._close_lock = threading.Lock()
		# loop state (touched by the loop thread only, except _done and the wake socket)
		self._conns: OrderedDict[int, _Conn] = OrderedDict()  # id -> connection, oldest first
		self._peers: dict[Peer, OrderedDict[int, _Conn]] = {}  # each peer's connections, oldest first
		self._peer_draining: dict[Peer, OrderedDict[int, _Conn]] = {}  # each peer's answered ones
		self._biggest: Peer | None = None  # the peer holding most connections (found once a loop turn)
		self._queues: dict[str, OrderedDict[int, _Conn]] = {
			READING: OrderedDict(),
			WRITING: OrderedDict(),
			DRAINING: OrderedDict(),
			HANDLING: OrderedDict(),
		}
		self._buffered = 0
		self._anonymous = 0
		self._slow_running = 0
		self._done: deque[tuple[_Conn, bytes]] = deque()
		self._tally = _Tally()
		self._selector: selectors.BaseSelector | None = None
		self._pool: ThreadPoolExecutor | None = None
		self._wake_r: socket.socket | None = None
		self._wake_w: socket.socket | None = None
		self._accept_paused_until = 0.0

	def bind(self) -> None:
		prepare_path(self.path)
		gid = None
		if self.group:
			try:
				gid = grp.getgrnam(self.group).gr_gid
			except KeyError:
				raise SocketInUse(f"socket_group {self.group!r} is not a group on this machine") from None
		sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		old_umask = os.umask(0o117)
		try:
			sock.bind(self.path)
		finally:
			os.umask(old_umask)
		os.chmod(self.path, 0o660)
		if gid is not None:
			os.chown(self.path, -1, gid)
		sock.listen(LISTEN_BACKLOG)
		sock.setblocking(False)
		self.sock = sock
		self._inode = os.stat(self.path).st_ino
		self.max_connections = connection_limit(self.wanted_connections)
		log_event(
			log,
			logging.INFO,
			"socket_listening",
			path=self.path,
			mode="0660",
			group=self.group,
			max_connections=self.max_connections,
			max_per_peer=self.max_per_peer,
		)

	# --- the loop --------------------------------------------------------------------------
	def serve(self, stop: threading.Event) -> None:
		assert self.sock is not None
		listener = self.sock
		selector = self._selector = selectors.DefaultSelector()
		self._wake_r, self._wake_w = socket.socketpair()
		self._wake_r.setblocking(False)
		self._wake_w.setblocking(False)
		selector.register(listener, selectors.EVENT_READ, None)
		selector.register(self._wake_r, selectors.EVENT_READ, "wake")
		listening = True
		try:
			while not stop.is_set() and self.sock is not None:
				now = time.monotonic()
				self._biggest = None
				if not listening and now >= self._accept_paused_until:
					selector.register(listener, selectors.EVENT_READ, None)
					listening = True
				try:
					events = selector.select(self._timeout(now))
				except OSError as exc:
					if stop.is_set() or self.sock is None:
						break
					log_event(log, logging.ERROR, "socket_accept_failed", error=str(exc))
					stop.wait(0.1)
					continue
				for key, mask in events:
					data = key.data
					if data is None:
						self._accept_some()
						if self._accept_paused_until > time.monotonic():
							selector.unregister(listener)
							listening = False
					elif data == "wake":
						self._collect_done()
					elif not data.closed:
						if mask & selectors.EVENT_WRITE and data.state == WRITING:
							self._send(data)
						elif mask & selectors.EVENT_READ:
							self._readable(data)
				now = time.monotonic()
				self._expire(now)
				self._tally.flush(now, len(self._conns))
		finally:
			self._shutdown_loop()
			self.close()

	def _timeout(self, now: float) -> float:
		timeout = TICK_SECONDS
		for queue in (self._queues[READING], self._queues[WRITING], self._queues[DRAINING]):
			if queue:
				first = next(iter(queue.values()))
				timeout = min(timeout, first.deadline - now)
		return max(0.0, timeout)

	def _shutdown_loop(self) -> None:
		for conn in list(self._conns.values()):
			self._close(conn)
		if self._pool is not None:
			self._pool.shutdown(wait=False, cancel_futures=True)
		for sock in (self._wake_r, self._wake_w):
			if sock is not None:
				sock.close()
		if self._selector is not None:
			self._selector.close()
		self._tally.flush(time.monotonic(), 0, force=True)

	def close(self) -> None:
		with self._close_lock:
			if self.sock is not None:
				try:
					self.sock.close()
				finally:
					self.sock = None
			try:
				if self._inode is not None and os.stat(self.path).st_ino == self._inode:
					os.unlink(self.path)
			except FileNotFoundError:
				pass

	# --- accepting, and the caps -------------------------------------------------------------
	def _accept_some(self) -> None:
		listener = self.sock
		if listener is None:
			return
		for _ in range(ACCEPT_BURST):
			try:
				sock, _ = listener.accept()
			except (BlockingIOError, InterruptedError):
				return
			except OSError as exc:
				if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
					# Out of descriptors: make room from the oldest unanswered connection, else pause.
					if not self._shed_oldest(None, "file descriptors"):
						self._accept_paused_until = time.monotonic() + 0.1
						return
					continue
				if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
					continue
				log_event(log, logging.ERROR, "socket_accept_failed", error=str(exc))
				self._accept_paused_until = time.monotonic() + 0.1
				return
			self._open(sock)

	def _open(self, sock: socket.socket) -> None:
		peer = self._peer_of(sock)
		held = self._peers.get(peer)
		count = len(held) if held else 0
		# A process at its cap, or holding the most when all are taken, has its new connection refused
		# at once (the cheapest answer: a flood of reconnects costs little); anyone else's new
		# connection makes room by shedding the oldest unanswered one of the peer holding the most.
		if count >= self.max_per_peer and not self._peer_draining.get(peer):
			self._refuse_new(sock, peer, "per-peer limit")
			return
		if len(self._conns) >= self.max_connections and not self._queues[DRAINING]:
			biggest = self._biggest_peer()
			if biggest is None or count >= len(self._peers[biggest]):
				self._refuse_new(sock, peer, "connection limit")
				return
		sock.setblocking(False)
		conn = _Conn(sock, peer, time.monotonic())
		key = id(conn)
		self._conns[key] = conn
		self._peers.setdefault(peer, OrderedDict())[key] = conn
		self._queues[READING][key] = conn
		try:
			assert self._selector is not None
			self._selector.register(sock, selectors.EVENT_READ, conn)
		except (OSError, ValueError, KeyError):
			self._close(conn)
			return
		if count >= self.max_per_peer:
			self._shed_oldest(peer, "per-peer limit")  # one of its answered ones: silently
		if len(self._conns) > self.max_connections:
			self._shed_oldest(None, "connection limit")
		if not conn.closed:
			self._readable(conn)  # a client usually sent its line before we accepted

	def _refuse_new(self, sock: socket.socket, peer: Peer, why: str) -> None:
		self.on_error()
		self._tally.shed[peer] += 1
		self._tally.shed_why[why] += 1
		try:
			sock.send(refusal(self._busy_message(peer, why)), socket.MSG_DONTWAIT)
		except OSError:
			pass
		sock.close()

	def _busy_message(self, peer: Peer, why: str) -> str:
		if why == "per-peer limit":
			return (
				f"daemon busy: {self.max_per_peer} connections open from process {_pid(peer)}; "
				"the newest are refused; retry"
			)
		return f"daemon busy: {self.max_connections} connections open; retry"

	def _biggest_peer(self) -> Peer | None:
		"""The peer holding the most connections (looked for once a loop turn)."""
		if self._biggest not in self._peers:
			self._biggest = max(self._peers, key=lambda p: len(self._peers[p]), default=None)
		return self._biggest

	def _peer_of(self, sock: socket.socket) -> Peer:
		try:
			pid, uid, _gid = _UCRED.unpack(
				sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
			)
			return pid, uid
		except (AttributeError, OSError, struct.error):
			self._anonymous += 1  # no credentials: every connection is its own peer
			return -1, -self._anonymous

	def _shed_oldest(self, peer: Peer | None, why: str) -> bool:
		"""Close the oldest connection not being answered, of ``peer`` or (None) of the peer holding
		the most; an answered one (draining) first. False when there is none."""
		draining = self._queues[DRAINING] if peer is None else self._peer_draining.get(peer)
		victim = next(iter(draining.values())) if draining else None  # answered: nothing lost
		if victim is None:
			if peer is None:
				peer = self._biggest_peer()
			for conn in self._peers.get(peer, {}).values():
				if conn.state != HANDLING:
					victim = conn
					break
		if victim is None:
			return False
		if victim.state == DRAINING:
			self._close(victim)  # answered already: closing it early loses nothing, and is not logged
			return True
		self._tally.shed[victim.peer] += 1
		self._tally.shed_why[why] += 1
		if victim.state == READING:
			self.on_error()
			message = self._busy_message(victim.peer, why)
			try:
				victim.sock.send(refusal(message))
			except OSError:
				pass
		self._close(victim)
		return True

	# --- one connection ----------------------------------------------------------------------
	def _move(self, conn: _Conn, state: str, deadline: float | None = None) -> None:
		key = id(conn)
		self._queues[conn.state].pop(key, None)
		if state == DRAINING:
			self._peer_draining.setdefault(conn.peer, OrderedDict())[key] = conn
		conn.state = state
		if deadline is not None:
			conn.deadline = deadline
		self._queues[state][key] = conn

	def _readable(self, conn: _Conn) -> None:
		if conn.state == READING:
			self._read(conn)
		elif conn.state == DRAINING:
			self._drain(conn)

	def _read(self, conn: _Conn) -> None:
		buffer = conn.buffer
		while True:
			want = MAX_REQUEST_BYTES + 1 - len(buffer)
			try:
				chunk = conn.sock.recv(min(65536, want))
			except (BlockingIOError, InterruptedError):
				if len(buffer) and self._buffered > MAX_BUFFERED:
					self._shed_partial()
				return
			except OSError as exc:
				self._forget_buffer(conn)
				self._reject_quietly(conn, f"connection error: {exc}")
				return
			if not chunk:
				self._forget_buffer(conn)
				if buffer:
					self._handle(conn, bytes(buffer))  # a last line without newline is accepted at EOF
				else:
					self._reject(conn, "empty request; expected a JSON object on one line")
				return
			newline = chunk.find(b"\n")
			if newline >= 0:
				self._forget_buffer(conn)
				buffer += chunk[:newline]
				if len(buffer) > MAX_REQUEST_BYTES:
					self._reject(conn, f"request exceeds {MAX_REQUEST_BYTES} bytes")
				else:
					self._handle(conn, bytes(buffer))
				return
			buffer += chunk
			self._buffered += len(chunk)
			if len(buffer) > MAX_REQUEST_BYTES:
				self._forget_buffer(conn)
				self._reject(conn, f"request exceeds {MAX_REQUEST_BYTES} bytes")
				return

	def _forget_buffer(self, conn: _Conn) -> None:
		self._buffered -= len(conn.buffer)
		conn.buffer = bytearray()

	def _shed_partial(self) -> None:
		"""Too many bytes of unfinished requests held: close the oldest connections holding some."""
		for conn in list(self._queues[READING].values()):
			if self._buffered <= MAX_BUFFERED // 2:
				return
			if conn.buffer:
				self._forget_buffer(conn)
				self._tally.shed[conn.peer] += 1
				self._tally.shed_why["buffered bytes"] += 1
				self.on_error()
				try:
					conn.sock.send(refusal("daemon busy: too many unfinished requests; retry"))
				except OSError:
					pass
				self._close(conn)

	def _handle(self, conn: _Conn, line: bytes) -> None:
		try:
			request = parse_request(line)
		except ProtocolError as exc:
			self._reject(conn, str(exc))
			return
		if request.request_type in SLOW_REQUEST_TYPES:
			if self._slow_running >= MAX_SLOW:
				self._reject(
					conn, f"daemon busy: {MAX_SLOW} {request.request_type} requests in progress; retry"
				)
				return
			if self._pool is None:
				self._pool = ThreadPoolExecutor(SLOW_WORKERS, thread_name_prefix="btu-socket-worker")
			self._slow_running += 1
			self._move(conn, HANDLING)
			self._modify(conn, 0)
			self._pool.submit(self._run_slow, conn, request)
			return
		self._reply(conn, self._call(request))

	def _call(self, request: Request) -> bytes:
		try:
			return self.handler(request)
		except Exception as exc:  # noqa: BLE001 - one bad request never harms the daemon
			self.on_error()
			log_event(
				log,
				logging.ERROR,
				"socket_request_failed",
				request_type=request.request_type,
				error=str(exc),
				exc_info=True,
			)
			return encode_reply(False, f"internal error while handling {request.request_type}: {exc}")

	def _run_slow(self, conn: _Conn, request: Request) -> None:
		"""On a worker thread: answer a request that may block, and hand the reply to the loop."""
		try:
			reply = self._call(request)
		except BaseException:  # noqa: BLE001 - the loop must get its connection back
			reply = encode_reply(False, f"internal error while handling {request.request_type}")
		self._done.append((conn, reply))
		try:
			if self._wake_w is not None:
				self._wake_w.send(b"\0")
		except OSError:
			pass  # the wake socket is full (the loop will see the reply) or closed (stopping)

	def _collect_done(self) -> None:
		try:
			while self._wake_r is not None and self._wake_r.recv(4096):
				pass
		except (BlockingIOError, InterruptedError):
			pass
		except OSError:
			return
		while self._done:
			conn, reply = self._done.popleft()
			self._slow_running -= 1
			if not conn.closed:
				self._reply(conn, reply)

	def _reject(self, conn: _Conn, reason: str) -> None:
		self.on_error()
		self._tally.rejected(reason, conn.peer)
		self._reply(conn, refusal(reason))

	def _reject_quietly(self, conn: _Conn, reason: str) -> None:
		"""The client went away: count it, and close (there is nobody to reply to)."""
		self.on_error()
		self._tally.rejected(reason, conn.peer)
		self._close(conn)

	def _reply(self, conn: _Conn, reply: bytes) -> None:
		conn.out = reply
		self._move(conn, WRITING, time.monotonic() + WRITE_SECONDS)
		self._send(conn)

	def _send(self, conn: _Conn) -> None:
		try:
			while conn.out:
				sent = conn.sock.send(conn.out)
				conn.out = conn.out[sent:]
		except (BlockingIOError, InterruptedError):
			self._modify(conn, selectors.EVENT_WRITE)
			return
		except OSError as exc:
			if exc.errno not in (None, errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
				log_event(log, logging.DEBUG, "socket_reply_failed", error=str(exc))
			self._close(conn)
			return
		try:
			conn.sock.shutdown(socket.SHUT_WR)
		except OSError:
			self._close(conn)
			return
		# Read what the client still sends (briefly) so closing does not cut its sending short.
		self._move(conn, DRAINING, time.monotonic() + DRAIN_SECONDS)
		self._modify(conn, selectors.EVENT_READ)
		self._drain(conn)

	def _drain(self, conn: _Conn) -> None:
		try:
			while True:
				chunk = conn.sock.recv(65536)
				if not chunk:
					break
				conn.drained += len(chunk)
				if conn.drained > DRAIN_BYTES:
					break
		except (BlockingIOError, InterruptedError):
			return
		except OSError:
			pass
		self._close(conn)

	def _modify(self, conn: _Conn, events: int) -> None:
		"""Watch the connection for ``events`` (0: not at all, while a worker answers it)."""
		assert self._selector is not None
		try:
			if not events:
				self._selector.unregister(conn.sock)
			elif conn.sock.fileno() in self._selector.get_map():
				self._selector.modify(conn.sock, events, conn)
			else:
				self._selector.register(conn.sock, events, conn)
		except (KeyError, OSError, ValueError):
			if events:
				self._close(conn)

	def _expire(self, now: float) -> None:
		for state in (READING, WRITING, DRAINING):
			queue = self._queues[state]
			for _ in range(EXPIRE_BURST):
				if not queue:
					break
				conn = next(iter(queue.values()))
				if conn.deadline > now:
					break
				if state == READING:
					self._forget_buffer(conn)
					self._reject(
						conn,
						f"request not completed within {REQUEST_SECONDS:g} s; "
						"send one JSON line ending with a newline",
					)
				else:
					self._close(conn)

	def _close(self, conn: _Conn) -> None:
		if conn.closed:
			return
		conn.closed = True
		key = id(conn)
		self._conns.pop(key, None)
		self._queues[conn.state].pop(key, None)
		peer_conns = self._peers.get(conn.peer)
		if peer_conns is not None:
			peer_conns.pop(key, None)
			if not peer_conns:
				del self._peers[conn.peer]
		if conn.state == DRAINING:
			draining = self._peer_draining[conn.peer]
			del draining[key]
			if not draining:
				del self._peer_draining[conn.peer]
		if conn.buffer:
			self._forget_buffer(conn)
		if self._selector is not None:
			try:
				self._selector.unregister(conn.sock)
			except (KeyError, ValueError, OSError):
				pass
		try:
			conn.sock.close()
		except OSError:
			pass
