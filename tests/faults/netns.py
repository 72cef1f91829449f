"""Hosts of our own for the multi-host fault test: Linux network namespaces on one bridge.

``NetLab`` makes a switch (a namespace holding a bridge) and hosts (a namespace each, with an
``eth0`` whose veth peer is a port of the bridge and an address of the lab's own subnet). Nothing is
added to the machine's own network namespace: every interface lives in a namespace of the lab, and
deleting a namespace deletes its interfaces. Processes run inside a host with ``ip netns exec``
(which execs the command: the pid we hold is the process itself) and are stopped by that pid.

The test process itself stays outside: it reaches the services host's MariaDB and Redis and the
daemons through Unix sockets (the file system is shared; network namespaces do not separate it),
while the daemons reach the services host over TCP, through the bridge. ``http_get`` runs a tiny
client inside a host to probe an HTTP endpoint from there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pymysql
import redis

from ..services import REPO, Process, wait_for

SUBNET = "10.231.7"  # addresses of the lab's own: every host is alone in its namespace
PREFIX_LEN = 24


class LabUnavailable(Exception):
	"""Network namespaces cannot be made here (the reason says why)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
	result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
	if check and result.returncode != 0:
		raise RuntimeError(f"ip {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
	return result


def probe() -> None:
	"""Raise LabUnavailable unless this process can create a namespace and a veth pair in it."""
	if shutil.which("ip") is None:
		raise LabUnavailable("iproute2's 'ip' is not installed (apt-get install iproute2)")
	if os.geteuid() != 0:
		raise LabUnavailable("network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
	name = f"btuprobe{os.getpid()}"
	made = ip("netns", "add", name, check=False)
	if made.returncode != 0:
		raise LabUnavailable(f"'ip netns add' failed: {made.stderr.strip()}")
	try:
		veth = ip("-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1", check=False)
		if veth.returncode != 0:
			raise LabUnavailable(f"cannot create a veth pair: {veth.stderr.strip()}")
	finally:
		ip("netns", "del", name, check=False)


class Host:
	def __init__(self, lab: "NetLab", name: str, address: str) -> None:
		self.lab = lab
		self.name = name
		self.netns = f"{lab.tag}-{name}"
		self.address = address
		self.port = f"v{name}"[:15]  # the veth peer's name on the bridge

	def command(self, *args: str) -> list[str]:
		return ["ip", "netns", "exec", self.netns, *args]

	def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
		return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout)

	def link(self, up: bool) -> None:
		"""Plug or unplug this host's network cable (its eth0; the bridge port loses carrier)."""
		ip("-n", self.netns, "link", "set", "eth0", "up" if up else "down")

	def start(
		self, args: list[str], log_path: str, env: dict[str, str] | None = None, cwd: str | None = None
	):
		process = Process(self.command(*args), log_path, env=env, cwd=cwd)
		self.lab.processes.append(process)
		return process

	def http_get(self, url: str, timeout: float = 5.0) -> tuple[int | None, Any]:
		"""(HTTP status, parsed JSON body) of a GET sent from inside this host; (None, reason) when
		nothing answered."""
		code = (
			"import json, sys, urllib.request, urllib.error\n"
			"try:\n"
			f"    r = urllib.request.urlopen(sys.argv[1], timeout={timeout})\n"
			"    status, body = r.status, r.read()\n"
			"except urllib.error.HTTPError as e:\n"
			"    status, body = e.code, e.read()\n"
			"except Exception as e:\n"
			"    print(json.dumps([None, f'{type(e).__name__}: {e}'])); sys.exit(0)\n"
			"try:\n"
			"    parsed = json.loads(body)\n"
			"except ValueError:\n"
			"    parsed = body.decode(errors='replace')[:500]\n"
			"print(json.dumps([status, parsed]))\n"
		)
		result = self.run(sys.executable, "-c", code, url, timeout=timeout + 20)
		try:
			status, body = json.loads(result.stdout.strip().splitlines()[-1])
		except (ValueError, IndexError):
			return None, f"probe failed: {result.stdout[-300:]} {result.stderr[-300:]}"
		return status, body


class NetLab:
	"""A switch and hosts; ``close()`` stops every process started in them and deletes them all."""

	def __init__(self) -> None:
		self.tag = f"btu{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
		self.switch = f"{self.tag}-sw"
		self.hosts: dict[str, Host] = {}
		self.namespaces: list[str] = []
		self.processes: list[Process] = []
		try:
			self._add_namespace(self.switch)
			ip("-n", self.switch, "link", "set", "lo", "up")
			ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
			ip("-n", self.switch, "link", "set", "br0", "up")
		except Exception:
			self.close()
			raise

	def _add_namespace(self, name: str) -> None:
		ip("netns", "add", name)
		self.namespaces.append(name)

	def host(self, name: str) -> Host:
		host = Host(self, name, f"{SUBNET}.{len(self.hosts) + 1}")
		self._add_namespace(host.netns)  # close() deletes it (and its eth0 with it) whatever fails next
		ip("-n", host.netns, "link", "set", "lo", "up")
		ip(
			"-n",
			self.switch,
			"link",
			"add",
			host.port,
			"type",
			"veth",
			"peer",
			"name",
			"eth0",
			"netns",
			host.netns,
		)
		ip("-n", self.switch, "link", "set", host.port, "master", "br0")
		ip("-n", self.switch, "link", "set", host.port, "up")
		ip("-n", host.netns, "addr", "add", f"{host.address}/{PREFIX_LEN}", "dev", "eth0")
		ip("-n", host.netns, "link", "set", "eth0", "up")
		self.hosts[name] = host
		return host

	def close(self) -> list[str]:
		"""Stop our processes (by pid), delete our namespaces; returns what could not be undone."""
		problems = []
		for process in reversed(self.processes):
			try:
				if process.alive():
					try:
						os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
					except ProcessLookupError:
						pass
				process.stop(timeout=30)
			except Exception as exc:  # noqa: BLE001 - go on removing the rest
				problems.append(f"process {process.pid}: {exc}")
		for name in reversed(self.namespaces):
			result = ip("netns", "del", name, check=False)
			if result.returncode != 0:
				problems.append(f"netns {name}: {result.stderr.strip()}")
		left = ip("netns", "list", check=False).stdout
		problems += [f"netns {n} still listed" for n in self.namespaces if n in left.split()]
		return problems


# --- services inside a host ----------------------------------------------------------------------


class HostRedis:
	"""redis-server inside a host, bound to its address (TCP for the daemons) and to a Unix socket
	(for the test); the default user is off and every client logs in."""

	def __init__(self, host: Host, workdir: str, users: dict[str, tuple[str, str]], admin: str) -> None:
		self.host = host
		self.workdir = workdir
		self.users = users  # name -> (password, ACL rules)
		self.admin = admin
		self.unix_socket = os.path.join(workdir, "redis.sock")
		self.process: Process | None = None

	def start(self) -> "HostRedis":
		acl = ["--user", "default", "off"]
		for name, (password, rules) in self.users.items():
			acl += ["--user", name, "on", f">{password}", *rules.split()]
		self.process = self.host.start(
			[
				"redis-server",
				"--port",
				"6379",
				"--bind",
				self.host.address,
				"--unixsocket",
				self.unix_socket,
				"--unixsocketperm",
				"700",
				"--save",
				"",
				"--appendonly",
				"no",
				"--dir",
				self.workdir,
				"--daemonize",
				"no",
				*acl,
			],
			os.path.join(self.workdir, "redis.log"),
		)
		wait_for(self.ping, 20, 0.1, what=f"redis-server on {self.host.address}")
		return self

	def client(self, **kwargs) -> redis.Redis:
		return redis.Redis(
			unix_socket_path=self.unix_socket,
			username=self.admin,
			password=self.users[self.admin][0],
			**kwargs,
		)

	def ping(self) -> bool:
		try:
			return bool(self.client(socket_timeout=1).ping())
		except (redis.RedisError, OSError):
			return False

	def url(self, db: int = 0) -> str:
		return f"redis://{self.host.address}:6379/{db}"


class HostMariaDB:
	"""mariadbd inside a host with a data directory of its own, bound to the host's address (TCP for
	the daemons) and to a Unix socket (root, for the test). No name resolution: grants use addresses."""

	def __init__(self, host: Host, workdir: str) -> None:
		self.host = host
		self.workdir = workdir
		self.datadir = os.path.join(workdir, "mysql-data")
		self.unix_socket = os.path.join(workdir, "mysqld.sock")
		self.process: Process | None = None

	def start(self) -> "HostMariaDB":
		subprocess.run(
			[
				"mariadb-install-db",
				"--no-defaults",
				f"--datadir={self.datadir}",
				"--auth-root-authentication-method=normal",
				"--user=root",
				"--skip-test-db",
			],
			check=True,
			capture_output=True,
			timeout=300,
		)
		self.process = self.host.start(
			[
				"mariadbd",
				"--no-defaults",
				f"--datadir={self.datadir}",
				"--port=3306",
				f"--bind-address={self.host.address}",
				f"--socket={self.unix_socket}",
				"--user=root",
				"--skip-name-resolve",
				"--innodb-buffer-pool-size=32M",
				f"--pid-file={os.path.join(self.workdir, 'mysqld.pid')}",
				"--skip-log-bin",
			],
			os.path.join(self.workdir, "mariadbd.log"),
		)
		wait_for(self.ping, 90, 0.2, what=f"mariadbd on {self.host.address}")
		return self

	def root_args(self) -> dict[str, Any]:
		"""pymysql arguments for root over the Unix socket (SiteDB and init_database take them)."""
		return dict(unix_socket=self.unix_socket, user="root", password="")

	def ping(self) -> bool:
		try:
			pymysql.connect(**self.root_args(), connect_timeout=1).close()
			return True
		except pymysql.MySQLError:
			return False

	def grant(self, user: str, password: str, host_pattern: str, database: str) -> None:
		"""A site's database user, allowed from the given hosts only (as a bench's site user)."""
		conn = pymysql.connect(**self.root_args(), autocommit=True)
		try:
			with conn.cursor() as cur:
				cur.execute(
					"CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host_pattern, password)
				)
				cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@%s", (user, host_pattern))
		finally:
			conn.close()


def python_env() -> dict[str, str]:
	return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}


def sleep_until(deadline: float) -> None:
	while True:
		left = deadline - time.time()
		if left <= 0:
			return
		time.sleep(min(left, 0.5))
