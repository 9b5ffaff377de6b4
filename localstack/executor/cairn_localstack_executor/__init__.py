"""Cairn: a LocalStack Lambda runtime executor running bootstraps as host processes."""
