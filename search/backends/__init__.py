"""Search engines behind one interface; ``search.services`` picks one from the settings."""
