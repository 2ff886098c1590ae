"""The HTTP API: one router per resource under ``api/routes``."""
