"""The ``pet`` command line: a thin shell over the library."""
