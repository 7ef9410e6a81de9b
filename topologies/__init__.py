"""Mininet topologies of IoT devices and an edge server (``mn --custom`` files)."""
