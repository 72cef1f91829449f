// BTU Task Log form (read-only record of one run)
frappe.ui.form.on("BTU Task Log", {
	refresh(frm) {
		frm.disable_save();
		const color = btu.STATUS_COLORS[frm.doc.success_fail] || "gray";
		frm.page.set_indicator(__(frm.doc.success_fail || ""), color);
		if (frm.doc.task) {
			frm.add_custom_button(__("Open Task"), () => frappe.set_route("Form", "BTU Task", frm.doc.task));
		}
		if (frm.doc.schedule) {
			frm.add_custom_button(__("Open Schedule"), () =>
				frappe.set_route("Form", "BTU Task Schedule", frm.doc.schedule)
			);
		}
	},
});
