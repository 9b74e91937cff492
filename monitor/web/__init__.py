"""The web desk (issue 5): Starlette app, one routes_<area>.py module per area, templates/."""
