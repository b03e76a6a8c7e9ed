"""Time: `--at`, the run-due lock, the cron line or systemd timer."""
