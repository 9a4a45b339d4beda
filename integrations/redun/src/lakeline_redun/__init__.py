"""lakeline_redun: lakeline integration (features arrive with its own issue)."""

__all__: list[str] = []
