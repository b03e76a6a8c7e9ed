"""mailer: one deliberately impersonal "here are my channels" mail to everyone you met."""

__version__ = "0.1.0"
DISTRIBUTION = "contact-card-mailer"  # the name on the package index; `mailer` there is another project
