"""What admins watch: metrics, health, alerts."""
