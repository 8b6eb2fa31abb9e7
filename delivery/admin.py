"""Delivery in the admin: sending issues (admin_sending) and ESP feedback (admin_feedback).
Both register on import."""

from delivery import admin_feedback, admin_sending  # noqa: F401
