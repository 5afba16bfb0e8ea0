"""The I/O side: connections, drivers that perform the core's ops, tracking, publishing."""
