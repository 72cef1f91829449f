// BTU Task Schedule list: recurring schedules by default, one-shots apart (what became of each),
// each row with its rule and zone, next run by its rule and last status.
frappe.listview_settings["BTU Task Schedule"] = {
	add_fields: ["enabled", "cron_string", "cron_timezone", "run_frequency", "run_at", "next_run", "last_status", "last_log", "paused_reason"],
	filters: [["run_frequency", "!=", "Once"]],
	get_indicator(doc) {
		if (doc.run_frequency === "Once") return btu_one_shot_indicator(doc);
		if (!doc.enabled && doc.paused_reason) return [__("Paused after failures"), "orange", "paused_reason,is,set"];
		return doc.enabled ? [__("Enabled"), "green", "enabled,=,1"] : [__("Disabled"), "gray", "enabled,=,0"];
	},
	formatters: {
		// The rule in its zone ("default" when it uses BTU Configuration's).
		cron_string(value, df, doc) {
			if (doc.run_frequency === "Once") return `<span class="text-muted">${__("once")}</span>`;
			const zone = doc.cron_timezone ? btu.escape(doc.cron_timezone) : __("default zone");
			return `<code>${btu.escape(value || "")}</code> <span class="text-muted">${zone}</span>`;
		},
		// A next run in the past: no run happened since (the daemon is down, or the site paused).
		next_run(value, df, doc) {
			if (!value) return "";
			const text = frappe.datetime.str_to_user(value);
			const past = doc.enabled && moment(value).isBefore(moment(frappe.datetime.now_datetime()).subtract(5, "minutes"));
			return past ? `<span class="text-danger" title="${__("This time has passed without a run")}">${text}</span>` : text;
		},
		last_status(value) {
			if (!value) return "";
			return `<span class="indicator-pill ${btu.STATUS_COLORS[value] || "gray"}">${btu.escape(__(value))}</span>`;
		},
	},
	onload(listview) {
		listview.page.add_inner_button(__("Recurring"), () => btu_schedule_filter(listview, "!=", __("Recurring")), __("Show"));
		listview.page.add_inner_button(__("One-shot runs"), () => btu_schedule_filter(listview, "=", __("One-shot runs")), __("Show"));
	},
};

function btu_schedule_filter(listview, operator) {
	listview.filter_area.clear(false).then(() => listview.filter_area.add([["BTU Task Schedule", "run_frequency", operator, "Once"]]));
}

// What became of a one-shot: pending, ran (with its status), did not run, or cancelled.
function btu_one_shot_indicator(doc) {
	const once = "run_frequency,=,Once";
	if (doc.enabled) {
		const overdue = doc.next_run && moment(doc.next_run).isBefore(moment(frappe.datetime.now_datetime()).subtract(5, "minutes"));
		return overdue ? [__("Did not run yet"), "orange", `${once}|enabled,=,1`] : [__("Runs once"), "blue", `${once}|enabled,=,1`];
	}
	switch (doc.last_status) {
		case "Success":
			return [__("Ran: Success"), "green", `${once}|last_status,=,Success`];
		case "Failed":
		case "Timeout":
			return [__("Ran: {0}", [__(doc.last_status)]), "red", `${once}|last_status,=,${doc.last_status}`];
		case "Skipped":
			return [__("Not run: too late"), "orange", `${once}|last_status,=,Skipped`];
		case "In-Progress":
			return [__("Running"), "blue", `${once}|last_status,=,In-Progress`];
		default:
			return [__("Cancelled"), "gray", `${once}|enabled,=,0`];
	}
}
