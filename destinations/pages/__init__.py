"""The destinations' pages."""
