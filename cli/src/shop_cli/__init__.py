"""The `shop` command: run the suite locally, talk to it, probe it, load it."""
