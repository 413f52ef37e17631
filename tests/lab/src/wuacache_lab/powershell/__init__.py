"""A Windows PowerShell 5.1 interpreter for the lab's emulated hosts.

The hosts run the collection's scripts as they arrive (the bootstrap over
WinRM, the task script in a scheduled task, the bridge they create), with
PowerShell 5.1's semantics for the subset those scripts use, and refuse the
rest naming the file and line. One concept per module:

- :mod:`.nodes`, :mod:`.lower`: the syntax tree, from tree-sitter's grammar;
- :mod:`.values`, :mod:`.conversions`, :mod:`.operators`, :mod:`.regex`,
  :mod:`.formatting`: values and PowerShell's LanguagePrimitives;
- :mod:`.errors`: .NET exceptions, error records, flow control;
- :mod:`.scopes`: variables along the call stack, strict mode;
- :mod:`.dotnet`, :mod:`.corelib`, :mod:`.com`: .NET types and COM
  objects, checked against Microsoft's reference (:mod:`.reference` reads
  the tables of :mod:`.contracts` for them);
- :mod:`.bind`: parameter binding of functions and cmdlets;
- :mod:`.commands`, :mod:`.jsonconvert`: the command table and the cmdlets
  that touch no Windows state;
- :mod:`.evaluate`: statements and expressions;
- :mod:`.runtime`, :mod:`.process`: what a process gets from its machine,
  and ``powershell.exe`` itself.
"""
