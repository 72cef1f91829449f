"""The limit probe: how long Redis itself takes to make N already-stored RQ jobs visible.

One server-side step (one EVALSHA) over N job hashes stored beforehand as BTU prepares them (rq's own
``Job.create`` + ``to_dict``, status ``scheduled``): per job ``status=queued`` and ``enqueued_at``, one
exactly-once marker, and one push of the ids (RPUSH 1,000 at a time: Lua's unpack limit). Nothing is
checked and no schedule is moved on: this is the floor for any scheduler that keeps a marker per run.

Two marker layouts: ``key`` (a string key per run with a TTL, ``SET ... EX``: the marker BTU kept up to
issue 13) and ``hash`` (one hash per fire time, schedule -> job id, one HSET per 500 runs and one
EXPIRE: what BTU's visibility step writes).

    bench/.venvs/btu/bin/python bench/limit_probe.py [--n 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from rq.job import Job, JobStatus  # noqa: E402

QUEUE_KEY = "rq:queue:probe"
STAMP = "2026-01-01T00:00:00.000000Z"

PROBE_LUA = {
	"key": """
for i = 4, #ARGV do
  redis.call('HSET', 'rq:job:' .. ARGV[i], 'status', 'queued', 'enqueued_at', ARGV[1])
  redis.call('SET', ARGV[2] .. ARGV[i], ARGV[i], 'EX', ARGV[3])
end
for i = 4, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return #ARGV - 3
""",
	"hash": """
for i = 4, #ARGV do
  redis.call('HSET', 'rq:job:' .. ARGV[i], 'status', 'queued', 'enqueued_at', ARGV[1])
end
for i = 4, #ARGV, 500 do
  local pairs = {}
  for j = i, math.min(i + 499, #ARGV) do pairs[#pairs + 1] = ARGV[j]; pairs[#pairs + 1] = ARGV[j] end
  redis.call('HSET', KEYS[2], unpack(pairs))
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
for i = 4, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return #ARGV - 3
""",
}
LAYOUTS = tuple(PROBE_LUA)


def store_jobs(client: redis.Redis, n: int, fire_ts: int) -> list[str]:
	"""N job hashes as BTU prepares them (same function, meta and description shape)."""
	ids = []
	pipe = client.pipeline(transaction=False)
	for i in range(n):
		schedule = f"TS-{i:07d}"
		job_id = f"btu-{schedule}-{fire_ts}-0123456789"
		job = Job.create(
			"bench_noop.noop",
			kwargs={},
			connection=client,
			id=job_id,
			origin="default",
			status=JobStatus.SCHEDULED,
			timeout=600,
			result_ttl=600,
			failure_ttl=7 * 24 * 3600,
			description=f"BTU bench.localhost {schedule} BTU-00001 at 2026-01-01T00:00:00+00:00",
			meta={
				"btu_site": "bench.localhost",
				"btu_schedule": schedule,
				"btu_task": "BTU-00001",
				"btu_fire_time": fire_ts,
			},
		)
		mapping = job.to_dict()
		mapping.pop("enqueued_at", None)
		pipe.hset(job.key, mapping=mapping)
		ids.append(job_id)
		if i % 1000 == 999:
			pipe.execute()
	pipe.execute()
	return ids


def evalsha_usec(client: redis.Redis) -> int:
	stats = client.info("commandstats")
	return sum(int(v["usec"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "evalsha"))


def probe_once(client: redis.Redis, n: int, layout: str) -> dict[str, float]:
	"""One probe on a clean database: store N jobs, then time the one step that makes them visible."""
	client.flushdb()
	fire_ts = int(time.time())
	ids = store_jobs(client, n, fire_ts)
	script = client.register_script(PROBE_LUA[layout])
	client.script_load(PROBE_LUA[layout])
	client.config_resetstat()
	started = time.perf_counter()
	made = script(
		keys=[QUEUE_KEY, f"btu:probe:fired:{fire_ts}"], args=[STAMP, "btu:probe:fired:", 90000, *ids]
	)
	call = time.perf_counter() - started
	server = evalsha_usec(client) / 1e6
	if int(made) != n or client.llen(QUEUE_KEY) != n:
		raise RuntimeError(f"limit probe made {made} visible, {client.llen(QUEUE_KEY)} queued, expected {n}")
	client.flushdb()
	return {"server_s": server, "call_s": call}


def probe(client: redis.Redis, n: int, layout: str, repeat: int = 3) -> dict[str, Any]:
	"""The median of ``repeat`` probes (this machine is shared: single figures vary)."""
	runs = [probe_once(client, n, layout) for _ in range(repeat)]
	server = statistics.median(r["server_s"] for r in runs)
	call = statistics.median(r["call_s"] for r in runs)
	return {
		"layout": layout,
		"n": n,
		"repeat": repeat,
		"server_s": round(server, 4),
		"call_s": round(call, 4),
		"server_us_per_run": round(server * 1e6 / n, 2),
		"call_us_per_run": round(call * 1e6 / n, 2),
		"server_s_each": [round(r["server_s"], 4) for r in runs],
	}


def main() -> None:
	parser = argparse.ArgumentParser(
		description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
	)
	parser.add_argument("--n", default="1000,10000,100000")
	parser.add_argument("--repeat", type=int, default=3)
	args = parser.parse_args()
	from tests.services import RedisServer

	workdir = tempfile.mkdtemp(prefix="btu-probe-", dir="/tmp")
	server = RedisServer(workdir).start()
	try:
		client = redis.Redis.from_url(server.url(0))
		for n in (int(x) for x in args.n.split(",")):
			for layout in LAYOUTS:
				found = probe(client, n, layout, args.repeat)
				print(
					f"N={n:>7,} markers={layout:4s}: server {found['server_s'] * 1000:8.1f} ms "
					f"({found['server_us_per_run']:5.2f} us a run), call {found['call_s'] * 1000:8.1f} ms"
				)
	finally:
		server.stop()
		shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
	os.environ.setdefault("PYTHONHASHSEED", "0")
	main()
