"""Storage through fsspec: roots, keys, hashing, transfers and the local cache."""
