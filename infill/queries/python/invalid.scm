; Structures the grammar accepts without an ERROR/MISSING node but the language rejects.
; Captured as @invalid; validation counts them like parse errors near an insertion.

; A compound statement with no body ("for x in y:" followed by a dedent): tree-sitter-python
; gives it an empty block, CPython says "expected an indented block".
((block) @invalid
  (#eq? @invalid ""))
