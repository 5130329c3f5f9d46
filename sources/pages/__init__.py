"""The sources' pages."""
