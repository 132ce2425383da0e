; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.

[(block) (field_declaration_list) (interface_type)] @block

[(argument_list) (parameter_list) (type_arguments)] @args

[
  (_statement) (function_declaration) (method_declaration) (import_declaration)
  (type_declaration) (const_declaration) (var_declaration)
] @statement

(_expression) @expression

[(interpreted_string_literal) (raw_string_literal) (rune_literal)] @string

(comment) @comment
