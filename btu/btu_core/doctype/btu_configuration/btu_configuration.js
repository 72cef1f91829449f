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
		frm.add_custom_button(__("Send test email"), () => btu_send_test_email(frm));
		frm.add_custom_button(__("Log Settings"), () => frappe.set_route("Form", "Log Settings"));
	},
});

function btu_send_test_email(frm) {
	if (frm.is_dirty()) {
		frappe.msgprint(__("Save BTU Configuration first: the test email uses the saved Email Account and prefix."));
		return;
	}
	const dialog = new frappe.ui.Dialog({
		title: __("Send test email"),
		fields: [
			{
				fieldtype: "Data",
				fieldname: "recipient",
				label: __("Recipient"),
				options: "Email",
				reqd: 1,
				default: frappe.boot.user.email || "",
				description: __("Sent now, through the Email Account BTU's run emails use."),
			},
		],
		primary_action_label: __("Send"),
		primary_action({ recipient }) {
			dialog.hide();
			btu
				.call("btu.btu_api.housekeeping.send_test_email", { recipient }, {
					freeze: true,
					freeze_message: __("Sending a test email to {0}...", [recipient]),
				})
				.then((r) => {
					const rows = [
						[__("Recipient"), btu.escape(r.recipient)],
						[__("Email Account"), btu.escape(r.account || __("none"))],
						[__("Sender"), btu.escape(r.sender || "")],
						[__("Email Queue"), r.email_queue ? `<a href="/app/email-queue/${encodeURIComponent(r.email_queue)}">${btu.escape(r.email_queue)}</a>` : ""],
					];
					if (r.error) rows.push([__("Error"), `<span class="text-danger">${btu.escape(r.error)}</span>`]);
					frappe.msgprint({
						title: r.sent ? __("Test email sent") : __("Test email not sent"),
						indicator: r.sent ? "green" : "red",
						message: `<p>${r.sent ? __("The mail server accepted the test email.") : __("The test email could not be sent.")}</p>
							<table class="table table-condensed btu-test-email">${rows
								.map(([k, v]) => `<tr><td class="text-muted">${k}</td><td>${v}</td></tr>`)
								.join("")}</table>`,
					});
				});
		},
	});
	dialog.show();
}
