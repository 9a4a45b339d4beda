"""The local web UI (`lakeline ui`): read-only, server-rendered pages of one instance.

`server` builds the Starlette application (routes, token gate, error pages), `views` the
pages, `queries` what they read (keyset pages, folders, cached counts), `preview` the
previews and downloads, `filters` the template filters. Needs the `ui` extra
(starlette, jinja2, uvicorn; pygments for highlighted source). Nothing here is imported by
`import lakeline` or by the CLI's start-up.
"""
