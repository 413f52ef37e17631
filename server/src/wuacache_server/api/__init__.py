"""The HTTP API of the wuacache server."""
