"""lakeline_nextflow: lakeline integration (features arrive with its own issue)."""

__all__: list[str] = []
