"""One campaign: the plan, the dry run, resend, holds, what is due, the problems report."""
