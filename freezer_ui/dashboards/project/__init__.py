"""Panels of the Project dashboard."""
