"""Register N cron jobs with rq-scheduler's ``Scheduler.cron`` (run in the rq-scheduler venv).

Usage: rqsched_load.py REDIS_URL N CRON QUEUE; prints {"seconds": ..., "jobs": ...} as JSON.
"""

import json
import sys
import time

from redis import Redis
from rq_scheduler import Scheduler


def main() -> None:
	url, count, rule, queue = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
	connection = Redis.from_url(url)
	scheduler = Scheduler(queue_name=queue, connection=connection)
	started = time.perf_counter()
	for i in range(count):
		scheduler.cron(rule, func="bench_noop.noop", kwargs={"i": i}, id=f"rqs-{i:07d}", queue_name=queue)
	seconds = time.perf_counter() - started
	print(json.dumps({"seconds": round(seconds, 3), "jobs": scheduler.count()}))


if __name__ == "__main__":
	main()
