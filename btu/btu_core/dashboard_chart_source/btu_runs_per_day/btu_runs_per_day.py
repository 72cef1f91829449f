"""Dashboard Chart Source "BTU Runs per Day": how many runs and how many failures (Failed or
Timeout) BTU Task Logs record per day (or week, or month) - the BTU workspace's chart.

Successful runs of transient tasks leave no log and are not counted. Days are those of the
system time zone, as the logs' Started times are.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import frappe
from frappe import _
from frappe.utils import add_days, getdate, nowdate

from btu.btu_api.permissions import require_doc_permission

SPANS = {"Last Week": 7, "Last Month": 30, "Last Quarter": 90, "Last Year": 365}
INTERVALS = ("Daily", "Weekly", "Monthly")
MAX_DAYS = 3700


def _bucket(day: date, interval: str) -> date:
	if interval == "Weekly":
		return day - timedelta(days=day.weekday())  # Monday
	if interval == "Monthly":
		return day.replace(day=1)
	return day


def _window(timespan: str | None, from_date: Any, to_date: Any) -> tuple[date, date]:
	"""First and last day shown (both included)."""
	if timespan == "Select Date Range" and from_date and to_date:
		start, end = getdate(from_date), getdate(to_date)
		if start > end:
			frappe.throw(_("The chart's From Date {0} is after its To Date {1}.").format(start, end))
		if (end - start).days > MAX_DAYS:
			frappe.throw(_("The chart shows at most {0} days.").format(MAX_DAYS))
		return start, end
	end = getdate(nowdate())
	return getdate(add_days(end, -(SPANS.get(timespan or "", 30) - 1))), end


def _label(day: date, interval: str, spans_years: bool) -> str:
	"""Short axis labels (a month of daily ISO dates overlapped): "12-06", or "2026-12" by month;
	the year is kept when the chart spans two years."""
	if interval == "Monthly":
		return day.strftime("%Y-%m")
	return day.strftime("%Y-%m-%d" if spans_years else "%m-%d")


def runs_per_period(
	start: date, end: date, interval: str = "Daily", filters: dict[str, Any] | None = None
) -> dict[str, Any]:
	"""{labels, datasets: [Runs, Failures]} for the days ``start`` .. ``end``."""
	interval = interval if interval in INTERVALS else "Daily"
	filters = filters or {}
	conditions, values = ["date_time_started >= %(start)s", "date_time_started < %(end)s"], {}
	values.update(start=str(start), end=str(add_days(end, 1)))
	for field in ("task", "schedule"):
		if filters.get(field):
			conditions.append(f"`{field}` = %({field})s")
			values[field] = filters[field]
	rows = frappe.db.sql(
		f"""SELECT DATE(date_time_started) AS day, COUNT(*) AS runs,
			SUM(success_fail IN ('Failed', 'Timeout')) AS failures
		FROM `tabBTU Task Log` WHERE {" AND ".join(conditions)}
		GROUP BY DATE(date_time_started)""",
		values,
		as_dict=True,
	)
	buckets: dict[date, list[int]] = {}
	day = start
	while day <= end:
		buckets.setdefault(_bucket(day, interval), [0, 0])
		day += timedelta(days=1)
	for row in rows:
		counts = buckets.setdefault(_bucket(getdate(row.day), interval), [0, 0])
		counts[0] += int(row.runs or 0)
		counts[1] += int(row.failures or 0)
	keys = sorted(buckets)
	return {
		"labels": [_label(key, interval, spans_years=keys[0].year != keys[-1].year) for key in keys]
		if keys
		else [],
		"datasets": [
			{"name": _("Runs"), "values": [buckets[key][0] for key in keys]},
			{"name": _("Failures"), "values": [buckets[key][1] for key in keys]},
		],
	}


@frappe.whitelist()
def get(
	chart_name: str | None = None,
	chart: Any = None,
	no_cache: Any = None,
	filters: Any = None,
	from_date: Any = None,
	to_date: Any = None,
	timespan: str | None = None,
	time_interval: str | None = None,
	heatmap_year: Any = None,
	refresh: Any = None,
) -> dict[str, Any]:
	"""The chart widget's call (Frappe passes the chart's settings, or the user's choice)."""
	require_doc_permission("BTU Task Log", None, "read")
	saved = (
		frappe.db.get_value(
			"Dashboard Chart", chart_name, ["timespan", "time_interval", "from_date", "to_date"], as_dict=True
		)
		if chart_name
		else None
	)
	saved = saved or frappe._dict()
	filters = frappe.parse_json(filters) if filters else {}
	if isinstance(filters, list):  # [[doctype, field, "=", value], ...] from the filter dialog
		filters = {f[1]: f[3] for f in filters if isinstance(f, list) and len(f) >= 4 and f[2] == "="}
	start, end = _window(timespan or saved.timespan, from_date or saved.from_date, to_date or saved.to_date)
	return runs_per_period(start, end, time_interval or saved.time_interval or "Daily", filters)
