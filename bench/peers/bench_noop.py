"""The cheap no-op every benchmarked scheduler enqueues (no worker runs it during the bench)."""


def noop(i=None):
	return None
