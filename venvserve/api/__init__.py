"""The public HTTP API: app factory, routes, error translation."""
