"""The message: the sender's profile, the templates, the sender's vCard -> `Draft`."""
