// BTU Failed Jobs: this site's failed RQ jobs of BTU (work horses that died, jobs that failed outside
// the task runner) in every BTU Queue; open one, requeue it (a new run through the daemon), delete it.

frappe.pages["btu-failed-jobs"].on_page_load = function (wrapper) {
	const page = frappe.ui.make_app_page({ parent: wrapper, title: __("BTU Failed Jobs"), single_column: true });
	const view = new BTUFailedJobs(page);
	wrapper.btu_failed_jobs = view;
	page.set_primary_action(__("Refresh"), () => view.load(), "refresh");
	page.add_inner_button(__("Scheduler Status"), () => frappe.set_route("btu-scheduler-status"));
	page.add_inner_button(__("Task Logs"), () => frappe.set_route("List", "BTU Task Log"));
	view.load();
};

frappe.pages["btu-failed-jobs"].on_page_show = function (wrapper) {
	wrapper.btu_failed_jobs && wrapper.btu_failed_jobs.load();
};

class BTUFailedJobs {
	constructor(page) {
		this.page = page;
		this.$body = $(`<div class="btu-failed-jobs"></div>`).appendTo(page.main);
		this.$body.on("click", "[data-action]", (event) => {
			const $button = $(event.currentTarget);
			const job_id = $button.closest("[data-job-id]").attr("data-job-id");
			const action = $button.attr("data-action");
			if (action === "open") this.open(job_id);
			if (action === "requeue") this.requeue(job_id);
			if (action === "delete") this.delete(job_id);
		});
	}

	load() {
		this.page.set_indicator(__("Loading"), "blue");
		return btu.call("btu.btu_api.failed_jobs.list_failed_jobs", {}, { type: "GET" }).then((r) => this.render(r));
	}

	render(r) {
		const queues = (r.queues || []).map(btu.escape).join(", ");
		if (r.error) {
			this.page.set_indicator(__("Redis unreachable"), "red");
			this.$body.html(`<div class="frappe-card p-3 text-danger">${btu.escape(r.error)}</div>`);
			return;
		}
		const jobs = r.jobs || [];
		this.page.set_indicator(jobs.length ? __("{0} failed", [jobs.length]) : __("None failed"), jobs.length ? "red" : "green");
		const intro = `<p class="text-muted">${__(
			"Failed RQ jobs of BTU for this site in the queues {0}. BTU's task runner records a task's own failures in its Task Log; a job fails here when its work horse died (out of memory, killed) or it failed before the runner started. Requeue runs the task again through the scheduler daemon, with the same arguments.",
			[queues]
		)}</p>`;
		if (!jobs.length) {
			this.$body.html(`<div class="frappe-card p-3">${intro}<p class="btu-no-failed-jobs">${__("No failed BTU jobs.")}</p></div>`);
			return;
		}
		const link = (doctype, name) =>
			name ? `<a href="/app/${frappe.router.slug(doctype)}/${encodeURIComponent(name)}">${btu.escape(name)}</a>` : "";
		const rows = jobs
			.map(
				(j) => `<tr data-job-id="${btu.escape(j.job_id)}">
					<td>${btu.escape(j.ended_at || "")}</td>
					<td>${btu.escape(j.queue)}</td>
					<td>${link("BTU Task", j.task)}</td>
					<td>${link("BTU Task Schedule", j.schedule)}</td>
					<td>${btu.escape(j.fire_time || "")}</td>
					<td class="btu-job-error"><code>${btu.escape(j.error)}</code></td>
					<td class="text-nowrap">
						<button class="btn btn-xs btn-default" data-action="open">${__("Open")}</button>
						<button class="btn btn-xs btn-primary" data-action="requeue">${__("Requeue")}</button>
						<button class="btn btn-xs btn-danger" data-action="delete">${__("Delete")}</button>
					</td></tr>`
			)
			.join("");
		this.$body.html(`<div class="frappe-card p-3">${intro}
			<table class="table table-condensed table-hover btu-failed-jobs-table">
				<thead><tr><th>${__("Failed at")}</th><th>${__("Queue")}</th><th>${__("Task")}</th><th>${__("Schedule")}</th>
				<th>${__("Fire time")}</th><th>${__("Error")}</th><th></th></tr></thead>
				<tbody>${rows}</tbody></table></div>`);
	}

	open(job_id) {
		btu.call("btu.btu_api.failed_jobs.get_failed_job", { job_id }, { type: "GET" }).then((j) => {
			const link = (doctype, name, exists) =>
				!name ? "" : exists === false ? `${btu.escape(name)} <span class="text-muted">(${__("deleted")})</span>`
					: `<a href="/app/${frappe.router.slug(doctype)}/${encodeURIComponent(name)}">${btu.escape(name)}</a>`;
			const rows = [
				[__("Job ID"), `<code>${btu.escape(j.job_id)}</code>`],
				[__("Queue"), `${btu.escape(j.queue)} <span class="text-muted">(${btu.escape(j.rq_queue)})</span>`],
				[__("Method"), `<code>${btu.escape(j.method || "")}</code>`],
				[__("Task"), link("BTU Task", j.task, j.task_exists)],
				[__("Schedule"), link("BTU Task Schedule", j.schedule, j.schedule_exists)],
				[__("Fire time"), btu.escape(j.fire_time || "")],
				[__("Enqueued / started / failed"), [j.enqueued_at, j.started_at, j.ended_at].map((t) => btu.escape(t || "-")).join(" / ")],
				[__("Timeout"), j.timeout ? `${j.timeout} s` : ""],
				[__("Task Log"), link("BTU Task Log", j.log)],
			];
			const dialog = new frappe.ui.Dialog({
				title: __("Failed job {0}", [btu.escape(j.job_id)]),
				size: "extra-large",
				fields: [{ fieldtype: "HTML", fieldname: "job" }],
				primary_action_label: __("Requeue"),
				primary_action: () => {
					dialog.hide();
					this.requeue(j.job_id);
				},
				secondary_action_label: __("Delete"),
				secondary_action: () => {
					dialog.hide();
					this.delete(j.job_id);
				},
			});
			dialog.fields_dict.job.$wrapper.html(`<div class="btu-failed-job">
				<table class="table table-condensed">${rows.map(([k, v]) => `<tr><td class="text-muted">${k}</td><td>${v}</td></tr>`).join("")}</table>
				<h6>${__("Traceback")}</h6>${btu.pre(j.traceback)}
				<h6>${__("Arguments of the task runner")}</h6>${btu.pre(j.arguments)}
				<h6>${__("The RQ job's keyword arguments")}</h6>${btu.pre(j.job_arguments)}</div>`);
			dialog.show();
		});
	}

	requeue(job_id) {
		frappe.confirm(
			__("Run this job's task again now, with the same arguments, through the scheduler daemon? The failed job is removed."),
			() =>
				btu.call("btu.btu_api.failed_jobs.requeue_failed_job", { job_id }, { freeze: true }).then((r) => {
					frappe.show_alert(
						{ message: __("Requeued as run {0} of task {1}.", [r.run_id, r.task]), indicator: "green" },
						10
					);
					this.load();
				})
		);
	}

	delete(job_id) {
		frappe.confirm(__("Delete failed job {0}? Its Task Log, if any, stays.", [job_id]), () =>
			btu.call("btu.btu_api.failed_jobs.delete_failed_job", { job_id }).then(() => {
				frappe.show_alert({ message: __("Deleted failed job {0}.", [job_id]), indicator: "orange" }, 7);
				this.load();
			})
		);
	}
}
