pytest_plugins = ["lakeline.testing"]
