"""A Windows PowerShell 5.1 interpreter for the lab's emulated hosts.

The hosts run the collection's scripts as they arrive (the bootstrap over
WinRM, the task script in a scheduled task, the bridge they create), with
PowerShell 5.1's semantics for the subset those scripts use, and refuse the
rest naming the file and line. One concept per module:

- :mod:`.nodes`, :mod:`.lower`: the syntax tree, from tree-sitter's grammar;
- :mod:`.values`: PowerShell's values as Python objects;
- :mod:`.errors`: .NET exceptions, error records, flow control.
"""
