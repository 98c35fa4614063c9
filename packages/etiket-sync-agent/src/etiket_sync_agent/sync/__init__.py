"""Helpers of the existing agent's backend API (the "legacy API"): sync records and utilities."""
