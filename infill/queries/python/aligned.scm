; Nodes that must start at one indentation when they start their lines: the statements of a block
; and of the module. tree-sitter-python accepts an "unexpected indent" (a statement indented
; deeper than the one before it in the same block) and an "unindent does not match any outer
; indentation level" without an ERROR node; CPython rejects both. Comments (extras) are skipped.
(module (_) @aligned)
(block (_) @aligned)
