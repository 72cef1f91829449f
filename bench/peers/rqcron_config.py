"""`rq cron` configuration: N cron jobs on one cron rule (set by the bench through the environment)."""

import os

from bench_noop import noop
from rq import cron

N = int(os.environ["BENCH_N"])
RULE = os.environ.get("BENCH_CRON", "* * * * *")
QUEUE = os.environ.get("BENCH_QUEUE", "default")

for i in range(N):
	cron.register(noop, QUEUE, kwargs={"i": i}, cron=RULE, name=f"rqc-{i:07d}")
