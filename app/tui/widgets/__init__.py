"""Widgets of the app: a line-API table, the range input, the half-block image preview."""
