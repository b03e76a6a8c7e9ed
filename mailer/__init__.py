"""mailer: one deliberately impersonal "here are my channels" mail to everyone you met."""

__version__ = "0.1.0"
# the name on the package index (`mailer` there is an unrelated project)
DISTRIBUTION = "contact-card-mailer"
