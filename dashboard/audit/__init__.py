"""The durable audit trail: append-only, hash-chained daily files per process (issue 15).

`chain` is the line format and the check of one file, `writer` appends and seals a
process's files, `reader` pages through them merged by time, `commands` is
`citybrain audit verify|export`.
"""
