"""What the Frappe app and the scheduler daemon agree on, in one frappe-free place.

* ``schedule_rules`` - cron rules, time zones, the Desk's frequency fields;
* ``arguments`` - a task's JSON keyword arguments and a schedule's overrides;
* ``protocol`` - the Unix socket protocol, both halves (request parsing, replies, the client);
* ``redis_keys`` - the names of every Redis key BTU writes;
* ``runs`` - one-shots (Run At) and overlap policies;
* ``pending`` - a schedule's next run as the daemon confirmed it (fire time + the rule it was planned by);
* ``calendars``, ``jitter``, ``fire_times`` - a repeating schedule's fire times after its holiday list
  and its jitter.

Nothing here imports frappe, ``btu.btu_core`` or ``btu.scheduler_daemon``: both sides import it.
See docs/architecture.md.
"""
