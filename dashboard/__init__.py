"""The city operations cockpit: Dash app, ingest pipeline and read API."""
