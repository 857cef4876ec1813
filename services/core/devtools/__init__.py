"""Development helpers: tiny stand-ins for artifacts that cannot be downloaded here."""
