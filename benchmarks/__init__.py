"""hazina's benchmark suite; a package so its modules can import shared helpers from conftest."""
