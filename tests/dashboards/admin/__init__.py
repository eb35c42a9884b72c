"""Admin dashboard panels."""
