"""Frappe hooks of the BTU app (Background Tasks Unleashed)."""

app_name = "btu"
app_title = "BTU"
app_publisher = "BTU maintainers"
app_description = "Background Tasks Unleashed: schedule Python tasks with cron rules and time zones, run them in RQ workers, keep a log of every run."
app_email = "maintainers@btu.invalid"
app_license = "MIT"
required_apps = []

# Apps screen (/apps) and Desk
add_to_apps_screen = [
	{
		"name": "btu",
		"logo": "/assets/btu/images/btu-logo.svg",
		"title": "BTU",
		"route": "/app/btu",
		"has_permission": "btu.btu_api.permissions.has_app_permission",
	}
]
app_include_js = "/assets/btu/js/btu.js"
app_include_css = "/assets/btu/css/btu.css"

# Installation
after_install = "btu.install.after_install"
after_migrate = "btu.install.after_migrate"
setup_wizard_success = "btu.install.after_setup_wizard"
before_uninstall = "btu.install.before_uninstall"

# Housekeeping: logs left In-Progress by a killed worker become Timeout.
# Every minute: runs whose work horse died get their Failed Task Log, emails and retries.
scheduler_events = {
	"hourly": ["btu.btu_core.task_runner.expire_stale_in_progress_logs"],
	"daily": ["btu.btu_core.one_shot_cleanup.delete_finished_one_shots"],
	"cron": {
		"* * * * *": [
			"btu.btu_core.dead_work_horses.record_dead_work_horses",
			"btu.btu_core.alerts.check_schedules",
		]
	},
}

# A Task Log keeps the name of its task and schedule, but never stops them from being deleted
# (a schedule that has run, or the schedules of a cancelled task).
ignore_links_on_delete = ["BTU Task Log"]

# Log Settings (Desk > Log Settings) clears BTU Task Logs older than this many days;
# the controller implements clear_old_logs(days).
default_log_clearing_doctypes = {
	"BTU Task Log": 90,
}

# Functions a BTU Task may run (docs/security.md). BTU's own sample tasks are declared with
# @btu.runnable; an app may instead list function paths ("myapp.tasks.cleanup") or whole modules
# ("myapp.tasks.*": every public function and class defined there) under this key.
btu_runnable_functions = []

# Frappe v15's frappe.client.get_count counts any DocType for any logged-in user; BTU's are
# counted only for users who may read them (docs/security.md).
override_whitelisted_methods = {"frappe.client.get_count": "btu.btu_api.permissions.get_count"}

# A holiday list saved (BTU's own, or ERPNext's/HRMS's where the site has it): the schedules that
# follow it are replanned (btu.btu_core.business_calendar).
doc_events = {
	"Holiday List": {"on_update": "btu.btu_core.holiday_lists.after_holiday_list_change"},
}

# Every Link to a BTU Task (forms, list filters) searches with BTU's query: Frappe's link dropdown
# renders titles as markup, and a task's title is its description (btu.btu_api.search).
standard_queries = {"BTU Task": "btu.btu_api.search.task_query"}
