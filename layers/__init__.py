"""Geography and map layers of the cockpit."""
