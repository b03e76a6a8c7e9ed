"""One campaign: the service every command calls, the plan, the dry run, resend, holds,
what is due, the problems report."""
