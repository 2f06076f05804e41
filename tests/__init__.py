"""The test suite (a package, so that helper modules import by qualified name)."""
