// BTU Configuration form
frappe.ui.form.on("BTU Configuration", {
	onload(frm) {
		btu.set_time_zone_options(frm, "cron_time_zone");
	},

	refresh(frm) {
		frm.dashboard.clear_headline();
		if (frm.doc.pause_all_schedules) {
			frm.dashboard.set_headline(
				__("All schedules of this site are paused: the scheduler enqueues nothing until Pause All Schedules is cleared."),
				"orange"
			);
		}
		frm.add_custom_button(__("Ping daemon"), () =>
			frappe.xcall(btu.api + "ping_daemon").then((reply) => btu.show_daemon_reply(reply, __("Ping")))
		);
		frm.add_custom_button(__("Resync all schedules"), () =>
			frappe
				.xcall(btu.api + "resync_all_schedules")
				.then((reply) => btu.show_daemon_reply(reply, __("Resync all schedules")))
		);
		frm.add_custom_button(__("Scheduler Status"), () => frappe.set_route("btu-scheduler-status"));
	},
});
