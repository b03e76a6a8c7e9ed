"""The way back over IMAP: Sent copies, reading and sorting the inbox."""
