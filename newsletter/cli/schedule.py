"""Commands arriving with their issue."""
