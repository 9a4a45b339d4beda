"""A lab's schema module (a test fixture of lakeline): `lakeline_lab.models`."""
