// BTU Holiday List: dates a schedule's business calendar skips or moves to the next working day.
frappe.ui.form.on("BTU Holiday List", {
	add_weekly_offs(frm) {
		frm.call("add_weekly_offs").then((r) => {
			frm.refresh_field("holidays");
			frm.dirty();
			frappe.show_alert({
				message: __("{0} dates added; save to keep them.", [cint(r.message)]),
				indicator: "green",
			});
		});
	},
});
