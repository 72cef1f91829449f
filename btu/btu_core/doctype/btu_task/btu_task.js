// BTU Task form
frappe.ui.form.on("BTU Task", {
	setup(frm) {
		// Then Run: a submitted task other than this one (saving checks the rest, loops included),
		// its description escaped (Frappe's link dropdown renders titles as markup).
		frm.set_query("next_task", "then_run", () => ({
			query: "btu.btu_api.chains.next_task_query",
			filters: { exclude: frm.doc.name || "" },
		}));
	},
	refresh(frm) {
		frm.dashboard.clear_headline(); // Desk's set_headline appends: one headline, not one per refresh
		if (frm.is_new()) return;
		const runnable = frm.doc.docstatus < 2;
		if (runnable && !frm.doc.run_only_as_worker) {
			frm.add_custom_button(__("Run now on this server"), () => run_saved(frm, btu.run_task_on_server), __("Run"));
		}
		if (runnable) {
			frm.add_custom_button(__("Run now in a worker"), () => run_saved(frm, btu.run_task_in_worker), __("Run"));
		}
		if (frm.doc.docstatus === 1) {
			frm.add_custom_button(__("Run once at..."), () => btu_run_once_dialog(frm), __("Run"));
			frm.add_custom_button(
				__("Task Schedule"),
				() => frappe.new_doc("BTU Task Schedule", { task: frm.doc.name }),
				__("Create")
			);
			frm.add_custom_button(
				__("One-shot runs"),
				() => frappe.set_route("List", "BTU Task Schedule", { task: frm.doc.name, run_frequency: "Once" }),
				__("View")
			);
		}
		frm.add_custom_button(
			__("Task Logs"),
			() => frappe.set_route("List", "BTU Task Log", { task: frm.doc.name }),
			__("View")
		);
		frm.add_custom_button(__("Failed Jobs"), () => frappe.set_route("btu-failed-jobs"), __("View"));
		if (frappe.model.can_delete("BTU Task")) {
			frm.page.add_menu_item(__("Delete with its schedules"), () => delete_with_schedules(frm));
		}
		if (frm.doc.docstatus === 0) {
			frm.dashboard.set_headline(
				__("Submit this task to schedule it. Drafts can already be run with the Run buttons."),
				"blue"
			);
		} else {
			show_overview(frm);
		}
	},
});

// Next run (by its enabled schedules' rules) and last run, in one headline.
function show_overview(frm) {
	const asked = (frm.__btu_overview = (frm.__btu_overview || 0) + 1);
	frappe.xcall(btu.api + "task_overview", { task: frm.doc.name }).then((o) => {
		if (asked !== frm.__btu_overview || o.task !== frm.doc.name) return;
		const parts = [];
		if (o.next_run) {
			parts.push(__("Next run: {0} ({1})", [frappe.datetime.str_to_user(o.next_run.next_run), btu.escape(o.next_run.name)]));
		} else {
			parts.push(o.schedules ? __("No next run planned by its schedules.") : __("No enabled schedule."));
		}
		let color = "blue";
		if (o.last_run) {
			const l = o.last_run;
			const link = `<a href="/app/btu-task-log/${encodeURIComponent(l.name)}">${btu.escape(l.name)}</a>`;
			parts.push(__("Last run: {0}, {1} in {2} ({3})", [frappe.datetime.str_to_user(l.date_time_started), btu.escape(__(l.success_fail)), btu.format_run_time(l.execution_time), link]));
			color = { Success: "green", Failed: "red", Timeout: "red", Skipped: "orange" }[l.success_fail] || "blue";
		}
		frm.dashboard.clear_headline();
		frm.dashboard.set_headline(parts.join(" &middot; "), color);
	});
}

function delete_with_schedules(frm) {
	frappe.confirm(
		__("Delete task {0} with all its schedules (one-shot runs included)? Its Task Logs stay.", [btu.escape(frm.doc.name)]),
		() =>
			frappe.xcall("btu.btu_core.task_deletion.delete_task_with_schedules", { task: frm.doc.name }).then((r) => {
				frappe.show_alert({ message: __("Task {0} and {1} schedule(s) deleted.", [btu.escape(r.task), r.schedules_deleted]), indicator: "green" });
				frappe.set_route("List", "BTU Task");
			})
	);
}

function run_saved(frm, action) {
	if (frm.is_dirty()) {
		frappe.msgprint(__("Save the task first: runs use the saved function and arguments."));
		return;
	}
	action(frm.doc.name).then(() => frm.reload_doc());
}

// "Run once at...": one run of this task at a wall-clock time in a chosen zone, through the
// scheduler daemon (a one-shot BTU Task Schedule; btu.api.run_later from Python).
function btu_run_once_dialog(frm) {
	const in_zone = (zone) => moment().tz(zone).add(1, "hour").startOf("hour").format("YYYY-MM-DD HH:mm:ss");
	const dialog = new frappe.ui.Dialog({
		title: __("Run {0} once", [frm.doc.name]),
		fields: [
			{
				fieldtype: "Autocomplete",
				fieldname: "time_zone",
				label: __("Time Zone"),
				reqd: 1,
				options: btu._zones || [],
				description: __("The run happens when the clock of this zone shows Run At."),
			},
			{
				fieldtype: "Datetime",
				fieldname: "run_at",
				label: __("Run At"),
				reqd: 1,
				hide_timezone: 1,
				description: __("Wall-clock date and time in the Time Zone above."),
			},
			{ fieldtype: "Section Break", label: __("Optional") },
			{
				fieldtype: "Code",
				fieldname: "overrides",
				label: __("Argument Overrides"),
				options: "JSON",
				description: __("JSON object merged over the task's own arguments for this run."),
			},
			{
				fieldtype: "Link",
				fieldname: "queue",
				label: __("Queue"),
				options: "BTU Queue",
				description: __("Empty: the task's queue ({0}).", [btu.escape(frm.doc.queue_name || "default")]),
			},
		],
		primary_action_label: __("Schedule the run"),
		primary_action(values) {
			frappe
				.xcall("btu.api.run_once_from_desk", {
					task: frm.doc.name,
					run_at: values.run_at,
					time_zone: values.time_zone,
					overrides: values.overrides || null,
					queue: values.queue || null,
				})
				.then((r) => {
					dialog.hide();
					frappe.msgprint({
						title: __("Run scheduled"),
						indicator: "green",
						message: __("{0}: {1}. It shows among the upcoming runs of the BTU Scheduler Status page; it can be cancelled from its form until it starts.", [
							`<a href="/app/btu-task-schedule/${encodeURIComponent(r.run_id)}">${btu.escape(r.run_id)}</a>`,
							btu.escape(r.description),
						]),
					});
				});
		},
	});
	// Run At is read in the chosen zone: never shifted to the system time zone by the control.
	dialog.fields_dict.run_at.parse = (value) => (value ? frappe.datetime.user_to_str(value, false) : value);
	dialog.show();
	// The user's own zone first (what they mean by "at 09:00"), else the site's, else UTC.
	const zone = (frappe.boot.time_zone && (frappe.boot.time_zone.user || frappe.boot.time_zone.system)) || "UTC";
	dialog.set_value("time_zone", zone);
	if (!dialog.get_value("run_at")) dialog.set_value("run_at", in_zone(zone));
	frappe.xcall(btu.api + "time_zones").then((zones) => {
		btu._zones = zones;
		dialog.fields_dict.time_zone.set_data(zones);
	});
}
