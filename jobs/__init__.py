"""The daemon: the daily send and its housekeeping, on APScheduler."""
