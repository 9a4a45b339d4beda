"""What artifacts do: describe a path or object, save atomically, cache/load/open, delete."""
