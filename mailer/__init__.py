"""mailer: one deliberately impersonal "here are my channels" mail to everyone you met."""

__version__ = "0.1.0"
