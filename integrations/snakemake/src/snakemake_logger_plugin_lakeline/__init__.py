"""snakemake_logger_plugin_lakeline: lakeline integration (features arrive with its own issue)."""

__all__: list[str] = []
