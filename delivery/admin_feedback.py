"""ESP feedback in the admin: deliveries, events, suppressions and delivery history."""
