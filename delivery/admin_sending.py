"""Sending issues from the admin: preview, test, preflight, send, schedule, progress, report."""
