"""Panels of the Admin dashboard: every project's jobs and backups (admin role)."""
