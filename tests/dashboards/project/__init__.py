"""Project dashboard panels."""
