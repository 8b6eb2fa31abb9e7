"""Delivery in the admin: sending issues (admin_sending), ESP feedback (admin_feedback) and
the bounce mailbox (admin_bounces). Each registers on import."""

from delivery import admin_bounces, admin_feedback, admin_sending  # noqa: F401
