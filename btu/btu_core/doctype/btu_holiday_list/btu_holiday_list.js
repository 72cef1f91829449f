// BTU Holiday List: dates a schedule's business calendar skips or moves to the next working day.
frappe.ui.form.on("BTU Holiday List", {
	add_weekly_offs(frm) {
		// The dates come from the server; the rows are added here, so an unsaved list (and the name
		// typed for it) stays as it is. Dates already listed are kept once.
		const d = frm.doc;
		frappe
			.xcall(btu.api + "weekly_off_dates", {
				from_date: d.from_date,
				to_date: d.to_date,
				weekly_off: d.weekly_off,
			})
			.then((dates) => {
				const listed = new Set((d.holidays || []).map((row) => row.holiday_date));
				const added = dates.filter((day) => !listed.has(day));
				added.forEach((day) =>
					frm.add_child("holidays", { holiday_date: day, weekly_off: 1, description: d.weekly_off })
				);
				frm.refresh_field("holidays");
				frappe.show_alert({
					message: __("{0} dates added; save to keep them.", [added.length]),
					indicator: "green",
				});
			})
			.catch(() => null); // the server's message (e.g. no Weekly Off day) is shown by Desk
	},
});
