"""The `medchat` command line."""
