"""Features, labels and schemas: what an artifact holds, described and queryable.

`dtypes` parses and checks dtypes and values, `records` saves Feature/ULabel/Schema records,
`values` adds feature values and labels to artifacts, `lookups` queries artifacts by them and
`describe` prints an artifact as a tree.
"""
